package airlock

deny contains x if some x in other

other contains x if some x in deny
