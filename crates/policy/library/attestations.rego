# Rules about the attestations themselves: provenance, its builder, the SBOM, the freshness of the
# vulnerability scan, and separation of duties between the identities that vouch for them.
#
# Only attestations whose signatures verified against the trust root (`trusted`) and that are
# signed by a signer `data.airlock.allowed_signers[<type>]` allows for their type count.
package airlock

provenance_types := {"https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2"}

# The attestation types the library knows: `provenance`, `sbom` and `vulnerability-scan`. Each
# definition names its type in its head, so a call for another type skips it without running it.
is_type(a, "provenance") if a.predicate_type in provenance_types

# `a.predicate_type` is a prefix or a version of it (`https://cyclonedx.org/bom/v1.5`): with a
# `/` appended, it starts with the prefix and a `/`. At most one prefix matches.
is_type(a, "sbom") if {
	some prefix in sbom_prefixes
	startswith(concat("", [a.predicate_type, "/"]), prefix)
}

is_type(a, "vulnerability-scan") if a.predicate_type == "https://cosign.sigstore.dev/attestation/vuln/v1"

is_type(a, "vulnerability-scan") if count(object.get(a, ["evidence", "vulnerabilities"], [])) > 0

# The SBOM types, each with a `/` appended: CycloneDX and SPDX.
sbom_prefixes := ["https://cyclonedx.org/bom/", "https://spdx.dev/Document/"]

# The signers of `a` allowed to vouch for `type`.
vouching_signers(a, type) := {s | some s in a.signers; s in object.get(data.airlock.allowed_signers, type, [])}

# The identities of `a` allowed to vouch for `type`: the keys that signed it as an allowed signer,
# so one key listed under two signer names is one identity. An attestation without `keys` (an
# input written by hand) falls back to its signer names.
vouching_ids(a, type) := {k.keyid |
	some k in a.keys
	some s in k.signers
	s in object.get(data.airlock.allowed_signers, type, [])
} if {
	is_array(a.keys)
} else := vouching_signers(a, type)

# The attestation types the library knows.
attestation_types := ["provenance", "sbom", "vulnerability-scan"]

# For each type, the trusted attestations of that type signed by a signer allowed for it, each
# with those signers, as `[attestation, signers]`. A rule, so it is worked out once per decision;
# functions are evaluated at every call.
vouched_by_type := {type: [[a, signers] |
	some a in input.attestations
	a.trusted == true
	is_type(a, type)
	signers := vouching_signers(a, type)
	count(signers) > 0
] | some type in attestation_types}

# For each type, the trusted attestations of that type signed by a signer allowed for it.
qualifying_by_type := {type: [a | some [a, _] in vouched] | some type, vouched in vouched_by_type}

# The trusted attestations of `type` signed by a signer allowed for it.
qualifying(type) := object.get(qualifying_by_type, type, [])

# For each type, the allowed signers vouching for it.
signers_by_type := {type: {s | some [_, signers] in vouched; some s in signers} | some type, vouched in vouched_by_type}

# The allowed signers vouching for `type`.
signers_of(type) := object.get(signers_by_type, type, set())

# For each type, the identities (keys) vouching for it as allowed signers: `vouching_ids`, with the
# signers already worked out.
ids_by_type := {type: {i | some [a, signers] in vouched; some i in ids(a, type, signers)} |
	some type, vouched in vouched_by_type
}

ids(a, type, _) := vouching_ids(a, type) if is_array(a.keys)

ids(a, _, signers) := signers if not is_array(a.keys)

# The identities vouching for `type`.
ids_of(type) := object.get(ids_by_type, type, set())

# Why the attached attestations of `type` are untrusted, as the trust root's verdicts say (an
# expired root names its version, when it expired and that a new one must be applied).
untrusted_reasons(type) := {r |
	some a in input.attestations
	is_type(a, type)
	a.trusted != true
	some r in object.get(a, "reasons", [])
	is_string(r)
}

# Why no attestation of `type` qualifies.
why_missing(type) := "none is attached" if {
	count([a | some a in input.attestations; is_type(a, type)]) == 0
} else := sprintf("every one attached is untrusted: %s", [concat("; ", untrusted_reasons(type))]) if {
	count([a | some a in input.attestations; is_type(a, type); a.trusted == true]) == 0
	count(untrusted_reasons(type)) > 0
} else := "every one attached is untrusted: none of its signatures verifies against the trust root" if {
	count([a | some a in input.attestations; is_type(a, type); a.trusted == true]) == 0
} else := sprintf("the trusted ones are signed by %s, but `data.airlock.allowed_signers[\"%s\"]` allows %s", [
	names({s | some a in input.attestations; is_type(a, type); a.trusted == true; some s in a.signers}),
	type,
	names(object.get(data.airlock.allowed_signers, type, [])),
])

# The provenance of the qualifying provenance attestations.
provenance := [p | some a in qualifying("provenance"); some p in object.get(a, ["evidence", "provenance"], [])]

deny contains f if {
	"provenance-required" in stage_rules
	count(qualifying("provenance")) == 0
	f := finding(
		"provenance-required",
		"critical",
		sprintf("no trusted SLSA provenance signed by an allowed signer: %s", [why_missing("provenance")]),
		"attach the SLSA provenance your build produced, signed by a signer that `data.airlock.allowed_signers[\"provenance\"]` allows, then promote again",
	)
}

deny contains f if {
	"builder-allowed" in stage_rules
	count(provenance) == 0
	f := finding(
		"builder-allowed",
		"critical",
		"no trusted provenance names a builder, so the builder cannot be checked",
		"attach SLSA provenance that names its builder (`runDetails.builder.id`), signed by an allowed signer",
	)
}

deny contains f if {
	"builder-allowed" in stage_rules
	some p in provenance
	not p.builder_id in data.airlock.allowed_builders
	f := finding(
		"builder-allowed",
		"critical",
		sprintf("builder `%v` is not in `data.airlock.allowed_builders`", [object.get(p, "builder_id", null)]),
		"build on an allowed builder, or, if this builder is trusted to build for production, add its id to `data.airlock.allowed_builders`",
	)
}

deny contains f if {
	"sbom-required" in stage_rules
	count(qualifying("sbom")) == 0
	f := finding(
		"sbom-required",
		"high",
		sprintf("no trusted CycloneDX or SPDX SBOM signed by an allowed signer: %s", [why_missing("sbom")]),
		"generate an SBOM of the artifact (for example with syft), attach it as a signed attestation, then promote again",
	)
}

# The decision time and the scan window, in nanoseconds.
now_ns := time.parse_rfc3339_ns(input.time)

max_scan_age_ns := data.airlock.scan_max_age_days * ((24 * 3600) * 1000000000)

default clock_skew_seconds := 0

clock_skew_seconds := data.airlock.scan_max_clock_skew_seconds

clock_skew_ns := clock_skew_seconds * 1000000000

# When each qualifying scan ran.
scan_times := {t | some a in qualifying("vulnerability-scan"); t := scan_time(a)}

# When scan `a` ran: cosign's `metadata.scanFinishedOn`, else the oldest `scanned_at` of its
# findings (a scan is as old as its oldest finding says). Each distinct stamp is parsed once.
scan_time(a) := t if {
	t := rfc3339_ns(a.predicate.metadata.scanFinishedOn)
} else := min({t |
	some stamp in {v.scanned_at | some v in object.get(a, ["evidence", "vulnerabilities"], [])}
	t := rfc3339_ns(stamp)
})

# An RFC 3339 time in nanoseconds; undefined when `s` is not one.
rfc3339_ns(s) := time.parse_rfc3339_ns(s) if {
	is_string(s)
	regex.match(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`, s)
}

fresh_scan if {
	some t in scan_times
	t >= now_ns - max_scan_age_ns
	t <= now_ns + clock_skew_ns
}

scan_problem := sprintf("no trusted vulnerability scan signed by an allowed signer: %s", [why_missing("vulnerability-scan")]) if {
	count(qualifying("vulnerability-scan")) == 0
} else := "no trusted vulnerability scan says when it ran (`metadata.scanFinishedOn` or `scanned_at`)" if {
	count(scan_times) == 0
} else := sprintf("the newest trusted vulnerability scan is %v days old; a scan counts for %v days", [
	floor((now_ns - max(scan_times)) / ((24 * 3600) * 1000000000)),
	data.airlock.scan_max_age_days,
]) if {
	max(scan_times) < now_ns - max_scan_age_ns
} else := "every trusted vulnerability scan is dated after the decision time, beyond the allowed clock skew"

deny contains f if {
	"scan-fresh" in stage_rules
	not fresh_scan
	f := finding(
		"scan-fresh",
		"high",
		scan_problem,
		"scan the artifact again with a trusted scanner, attach the signed result, then promote again",
	)
}

# Separation of duties. The types of `data.airlock.distinct_signer_types` (those with at least
# one qualifying attestation; a missing one is its own rule's business) must each be vouched for
# by a signer of its own, with a key of its own (one key under two signer names is one identity). By Hall's theorem such an assignment exists exactly when every set of
# these types is vouched for by at least as many signers as it has types, so each set that is
# not is a violation; the smallest are reported.
distinct_types := [t | some t in data.airlock.distinct_signer_types; count(signers_of(t)) > 0]

shared_sets contains types if {
	n := count(distinct_types)
	n > 0
	n <= 8
	some mask in numbers.range(1, bits.lsh(1, n) - 1)
	types := {t | some i, t in distinct_types; bits.and(mask, bits.lsh(1, i)) != 0}
	count({i | some t in types; some i in ids_of(t)}) < count(types)
}

deny contains f if {
	"distinct-signers" in stage_rules
	smallest := min({count(s) | some s in shared_sets})
	some types in shared_sets
	count(types) == smallest
	f := finding(
		"distinct-signers",
		"high",
		sprintf("attestation types %s are vouched for only by %s, with %d distinct signing key(s); each needs a signer with a key of its own, so that one identity cannot vouch for all of them", [
			names(types),
			names({s | some t in types; some s in signers_of(t)}),
			count({i | some t in types; some i in ids_of(t)}),
		]),
		"have each of these attestations signed by a different identity, for example the scan by the scanner rather than by CI",
	)
}

deny contains f if {
	"distinct-signers" in stage_rules
	count(data.airlock.distinct_signer_types) > 8
	f := finding(
		"distinct-signers",
		"high",
		"`data.airlock.distinct_signer_types` lists more than 8 types, more than this rule checks",
		"list at most 8 attestation types in `data.airlock.distinct_signer_types`",
	)
}
