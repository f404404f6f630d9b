#!/usr/bin/env python3
"""Writes the hostile fixtures under hostile/, each named after the attack it stands for.

A name with a suffix (`wrong-format.cyclonedx`) is read with that format; a name without one is
read with format detection. What Airlock makes of each is pinned in hostile/expected.txt by the
`hostile` integration test (UPDATE_EXPECT=1 cargo test -p airlock-evidence rewrites it).

The fixtures are read with the reduced limits of `FIXTURE_LIMITS` in tests/it/hostile.rs (100
entries, 64 items per list, 4096-byte strings, 10 unread entries) so that floods stay small files;
the default limits have their own tests there. Deterministic: run it again and nothing changes.
"""

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent / "hostile"

# The limits of FIXTURE_LIMITS in tests/it/hostile.rs.
MAX_ENTRIES = 100
MAX_LIST = 64
MAX_STRING = 4096
MAX_UNREAD = 10

DIGEST = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"


def write(name, content):
    data = content if isinstance(content, bytes) else content.encode()
    (HERE / name).write_bytes(data)


def dump(value):
    return json.dumps(value, indent=1, ensure_ascii=False) + "\n"


def cyclonedx(components=(), vulnerabilities=()):
    return {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": list(components), "vulnerabilities": list(vulnerabilities)}


def trivy(vulnerabilities):
    return {"SchemaVersion": 2, "CreatedAt": "2024-06-03T09:14:27Z", "ArtifactName": "payments-api",
            "Results": [{"Target": "payments-api (alpine 3.19.1)", "Class": "os-pkgs", "Type": "alpine",
                         "Vulnerabilities": list(vulnerabilities)}]}


def trivy_vulnerability(**fields):
    base = {"VulnerabilityID": "CVE-2024-2511", "PkgName": "libssl3",
            "PkgIdentifier": {"PURL": "pkg:apk/alpine/libssl3@3.1.4-r5"},
            "InstalledVersion": "3.1.4-r5", "FixedVersion": "3.1.4-r6", "Severity": "MEDIUM"}
    base.update(fields)
    return base


def grype(matches):
    return {"matches": list(matches), "source": {"type": "image"},
            "descriptor": {"name": "grype", "version": "0.78.0", "timestamp": "2024-06-03T11:20:05Z"}}


def grype_match(vulnerability_id="CVE-2024-2511", score=5.9):
    return {"vulnerability": {"id": vulnerability_id, "severity": "Medium",
                              "cvss": [{"type": "Primary", "version": "3.1", "metrics": {"baseScore": score}}],
                              "fix": {"versions": ["3.1.4-r6"], "state": "fixed"}},
            "relatedVulnerabilities": [],
            "artifact": {"name": "libssl3", "version": "3.1.4-r5", "purl": "pkg:apk/alpine/libssl3@3.1.4-r5"}}


def statement(predicate_type, predicate):
    return {"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "ghcr.io/octo-org/payments-api", "digest": {"sha256": DIGEST}}],
            "predicateType": predicate_type, "predicate": predicate}


def main():
    HERE.mkdir(exist_ok=True)
    for old in HERE.iterdir():
        if old.name != "expected.txt":
            old.unlink()

    # Nesting 10 000 levels deep: refused at level 65, before anything recurses further.
    write("deep-nesting-bomb",
          '{"bomFormat":"CycloneDX","specVersion":"1.6","components":' + "[" * 10_000 + "]" * 10_000 + "}")
    # A scanner's table output handed over as if it were its JSON.
    write("not-json", "ghcr.io/octo-org/payments-api (alpine 3.19.1)\n=====\nTotal: 2 (MEDIUM: 2)\n")
    # An SPDX document passed off as a CycloneDX BOM.
    write("wrong-format.cyclonedx", dump({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT",
                                          "packages": [{"name": "requests", "versionInfo": "2.31.0"}]}))
    # A version string longer than any version: costs that field, not the component.
    write("huge-string", dump(cyclonedx([{"type": "library", "name": "requests", "version": "9" * (MAX_STRING + 1),
                                          "purl": "pkg:pypi/requests@2.31.0"}])))
    # More components than the limit: the document is refused, not truncated.
    write("component-flood", dump(cyclonedx({"type": "library", "name": f"pkg-{i}"} for i in range(MAX_ENTRIES + 1))))
    # More vulnerabilities than the limit: refused, since a truncated list would hide the rest.
    write("vulnerability-flood", dump(grype(grype_match(f"CVE-2024-{10000 + i}") for i in range(MAX_ENTRIES + 1))))
    # More aliases in one vulnerability than a list may hold.
    write("alias-flood", dump(trivy([trivy_vulnerability(VendorIDs=[f"GHSA-{i:04d}" for i in range(MAX_LIST + 1)])])))
    # A severity carrying terminal escapes that would repaint a CI log line as LOW.
    write("severity-injection", dump(trivy([trivy_vulnerability(
        Severity="CRITICAL\u001b[2K\r\u001b[32mLOW", CVSS={"nvd": {"V3Score": 9.8}})])))
    # A severity word no scanner uses, to slip past a policy that lists the known ones.
    write("made-up-severity", dump(trivy([trivy_vulnerability(Severity="NEGLIGIBLE-ISH")])))
    # SARIF's security-severity as the one string Rust's float parser and JSON disagree on.
    write("nan-cvss", dump({"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "scanner", "rules": [{"id": "CVE-2024-2511", "properties": {"security-severity": "NaN"}}]}},
        "results": [{"ruleId": "CVE-2024-2511", "level": "error", "message": {"text": "libssl3"}}]}]}))
    # A CVSS score outside CVSS's range.
    write("cvss-out-of-range", dump(grype([grype_match(score=99.0)])))
    # A number JSON can write and no double can hold.
    write("number-out-of-range",
          dump(trivy([trivy_vulnerability(CVSS={"nvd": {"V3Score": 0}})])).replace('"V3Score": 0', '"V3Score": 1e999'))
    # Two severities for one vulnerability: parsers disagree about which one counts.
    text = dump(trivy([trivy_vulnerability(Severity="LOW")]))
    write("duplicate-member", text.replace('"Severity": "LOW"', '"Severity": "LOW", "Severity": "CRITICAL"'))
    # The same, with the second name spelled with an escape.
    write("escaped-duplicate-member", text.replace('"Severity": "LOW"', '"Severity": "LOW", "\\u0053everity": "CRITICAL"'))
    # A second document appended after the first.
    write("trailing-data", dump(grype([])) + dump(grype([grype_match()])))
    # A byte-order mark before the JSON.
    write("utf8-bom", b"\xef\xbb\xbf" + dump(grype([])).encode())
    # Bytes that are not UTF-8 inside a string.
    write("invalid-utf8", dump(grype([grype_match()])).encode().replace(b"libssl3", b"libssl\xff", 1))
    # A purl that is a script URL.
    write("not-a-purl", dump(cyclonedx([{"type": "library", "name": "requests", "version": "2.31.0",
                                         "purl": "javascript:alert(1)"}])))
    # A statement whose predicate type says CycloneDX and whose predicate is SPDX.
    write("statement-predicate-mismatch", dump(statement("https://cyclonedx.org/bom", {
        "spdxVersion": "SPDX-2.3", "packages": [{"name": "requests"}]})))
    # A statement of a predicate type that is not evidence.
    write("unknown-predicate-type", dump(statement("https://example.com/attestation/custom/v1", {"approved": True})))
    # An OpenVEX status outside the four the spec defines.
    write("vex-unknown-status", dump({"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1",
                                      "author": "x", "timestamp": "2024-06-04T12:00:00Z", "version": 1,
                                      "statements": [{"vulnerability": {"name": "CVE-2024-2511"},
                                                      "products": [{"@id": "pkg:apk/alpine/libssl3@3.1.4-r5"}],
                                                      "status": "resolved"}]}))
    # A match without a vulnerability id.
    match = grype_match()
    del match["vulnerability"]["id"]
    write("vulnerability-without-id", dump(grype([match, grype_match("CVE-2024-4741")])))
    # A source repository that one URL parser reads as github.com and another as evil.example.
    write("source-repository-confusion", dump(statement("https://slsa.dev/provenance/v1", {
        "buildDefinition": {"buildType": "https://actions.github.io/buildtypes/workflow/v1",
                            "externalParameters": {"workflow": {
                                "ref": "refs/heads/main", "path": ".github/workflows/release.yml",
                                "repository": "https://evil.example\\@github.com/octo-org/payments-api"}}},
        "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}}})))
    # A commit that is a ref name.
    write("commit-not-hex", dump(statement("https://slsa.dev/provenance/v0.2", {
        "builder": {"id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v1.9.0"},
        "buildType": "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
        "invocation": {"configSource": {"uri": "git+https://github.com/octo-org/payments-api@refs/heads/main",
                                        "digest": {"sha1": "HEAD"}, "entryPoint": ".github/workflows/release.yml"}}})))
    # SARIF of a version this reader does not know.
    write("sarif-wrong-version.sarif", dump({"version": "2.0.0", "runs": []}))
    # SPDX 3, a different format under the same name.
    write("spdx-3.spdx", dump({"spdxVersion": "SPDX-3.0", "@context": "https://spdx.org/rdf/3.0.0/spdx-context.jsonld"}))
    # An OpenVEX-looking document with another context.
    write("openvex-wrong-context.openvex", dump({"@context": "https://example.com/vex", "statements": []}))
    # A scan record whose result is no report Airlock reads.
    write("cosign-unknown-result", dump(statement("https://cosign.sigstore.dev/attestation/vuln/v1", {
        "scanner": {"uri": "pkg:github/example/scanner@1.0", "version": "1.0", "result": {"findings": []}},
        "metadata": {"scanStartedOn": "yesterday", "scanFinishedOn": "2024-06-03T09:14:27Z"}})))
    # More odd entries than `unread` keeps.
    write("unread-flood", dump(cyclonedx({"type": "library", "name": f"pkg-{i}", "purl": f"not-a-purl-{i}"}
                                         for i in range(MAX_UNREAD + 5))))
    # Evidence wrapped in an array, as some tools write a list of reports.
    write("top-level-array", dump([grype([grype_match()])]))


if __name__ == "__main__":
    main()
