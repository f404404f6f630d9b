package airlock

deny := {"x"} if input.target_stage == "never"
