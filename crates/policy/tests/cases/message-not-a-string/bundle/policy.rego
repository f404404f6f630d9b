package airlock

deny contains {"rule": "r", "msg": ["a"]} if true
