//! Contract cases of the `ModelCatalog` port: every adapter's snapshot has unique
//! names, a listed default whenever it lists anything, fallbacks that are not the
//! model itself, and stays the same between changes.

use crate::ports::ModelCatalog;

/// Checks one catalog against the port's contract.
pub fn catalog_contract(catalog: &dyn ModelCatalog) {
    let list = catalog.models();
    let names = list.choices();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "names are unique: {names:?}");
    match list.default_model() {
        Some(d) => assert!(
            list.find(d.name().as_str()).is_some(),
            "the default is listed"
        ),
        None => assert!(names.is_empty(), "a non-empty list has a default"),
    }
    for m in list.models() {
        assert_eq!(
            list.find(m.name().as_str()).map(|f| f.provider()),
            Some(m.provider())
        );
        assert!(m.max_output_tokens() >= 1);
        assert!(
            !m.fallbacks().contains(m.name()),
            "{} falls back to itself",
            m.name().as_str()
        );
    }
    assert_eq!(*catalog.models(), *list, "two reads without a change agree");
}
