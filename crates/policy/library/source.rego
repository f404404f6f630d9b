# The source repository rule. Provenance names the repository the artifact was built from,
# normalized by the engine (`github.com/org/repo`); it must equal an entry of
# `data.airlock.allowed_source_repositories` exactly: no prefix, case or path tricks.
package airlock

deny contains f if {
	"source-repository-allowed" in stage_rules
	count(provenance) == 0
	f := finding(
		"source-repository-allowed",
		"critical",
		"no trusted provenance names a source repository, so the source cannot be checked",
		"attach SLSA provenance that names the source repository it built from, signed by an allowed signer",
	)
}

deny contains f if {
	"source-repository-allowed" in stage_rules
	some p in provenance
	not p.source_repository in data.airlock.allowed_source_repositories
	f := finding(
		"source-repository-allowed",
		"critical",
		sprintf("source repository `%v` (provenance says `%v`) is not in `data.airlock.allowed_source_repositories`", [
			object.get(p, "source_repository", null),
			object.get(p, "source_repository_raw", null),
		]),
		"build from an allowed repository, or add this repository, exactly as written, to `data.airlock.allowed_source_repositories`",
	)
}
