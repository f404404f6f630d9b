//! Fuzzes every name parser of the registry's URLs: repository names, tags, references,
//! digests, stage names and upload ids. None may panic, and what parses must render back as is.
#![no_main]

use airlock_model::{Digest, Reference, RepoName, StageName, Tag, UploadId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(repo) = RepoName::parse(text) {
        assert_eq!(repo.as_str(), text);
        assert!(repo.as_str().starts_with(repo.stage().as_str()));
    }
    if let Ok(tag) = Tag::parse(text) {
        assert_eq!(tag.as_str(), text);
    }
    if let Ok(digest) = Digest::parse(text) {
        assert_eq!(digest.as_str(), text);
    }
    if let Ok(reference) = Reference::parse(text) {
        assert_eq!(reference.to_string(), text);
    }
    let _ = StageName::parse(text);
    let _ = UploadId::parse(text);
});
