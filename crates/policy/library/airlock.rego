# Airlock's default policy library: the entry points, which rules apply to which stage, and the
# helpers every rule shares.
#
# Airlock evaluates `data.airlock.deny` and `data.airlock.warn` (conftest's conventions). Every
# finding is an object with `rule`, `severity`, `msg`, `remediation` and `doc` (the rule's page,
# `docs/policies/<rule>.md`); a finding about one vulnerability or component also carries
# `vulnerability` and `component`, which waivers match. The input is `docs/policy-input.md`.
#
# Which rules apply is data: `data.airlock.stages[<target stage>].rules`. A target stage with no
# entry there is denied (`stage-unknown`), never waved through.
#
# Rules and `data.json` share the namespace `data.airlock`: no rule may be named like a key of
# `data.airlock` (`allowed_licenses`, `allowed_signers`, ...), or it would read itself; and no
# rule may read `data.airlock` as a whole (it holds the rules themselves). OPA reports either as
# a recursion error; regorus 0.14 may instead leave other rules undefined.
package airlock

# The rules that apply to this promotion's target stage. A rule that applies only to some stages
# starts with `"<rule>" in stage_rules` (written out rather than through a function, which costs
# a call each time).
stage_rules := data.airlock.stages[input.target_stage].rules

enabled(rule) if rule in stage_rules

# A finding of `rule`, linked to its page.
finding(rule, severity, msg, remediation) := {
	"rule": rule,
	"severity": severity,
	"msg": msg,
	"remediation": remediation,
	"doc": sprintf("docs/policies/%s.md", [rule]),
}

# `a`, `b` and `c` as "`a`, `b`, `c`", sorted; "nothing" when empty.
names(xs) := "nothing" if {
	count(xs) == 0
} else := concat(", ", [sprintf("`%v`", [x]) | some x in sort(xs)])

deny contains f if {
	not data.airlock.stages[input.target_stage]
	f := finding(
		"stage-unknown",
		"critical",
		sprintf("target stage `%v` has no rules in `data.airlock.stages`, so nothing could be checked", [input.target_stage]),
		sprintf("add `%v` and the rules it requires to `data.airlock.stages` in the bundle's `data.json`", [input.target_stage]),
	)
}

warn contains f if {
	unread := input.evidence.unread
	count(unread) > 0
	paths := [sprintf("`%v`", [object.get(u, "path", "?")]) | some u in unread]
	f := finding(
		"evidence-unread",
		"low",
		sprintf(
			"some of the trusted evidence could not be read (%d entries in `unread`), so the rules may have seen less than the documents say: %s",
			[count(unread), concat(", ", array.slice(paths, 0, 5))],
		),
		"look at each `unread` entry's reason, and fix the producer of that document or report the format to Airlock",
	)
}
