//! Reader tests against MaxMind's public test database (not committed: `scripts/test` finds it in
//! `../shared/data/` or downloads the `maxminddb` source package and sets `GATEHOUSE_TEST_MMDB`).

use std::net::IpAddr;

use super::*;

/// The test database, or a clear failure saying how to get it.
pub(crate) fn test_database() -> std::path::PathBuf {
    let path = std::env::var("GATEHOUSE_TEST_MMDB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/GeoIP2-Country-Test.mmdb")
        });
    assert!(
        path.is_file(),
        "GeoIP2-Country-Test.mmdb not found at {}: run the tests through scripts/test, which \
         fetches it, or set GATEHOUSE_TEST_MMDB",
        path.display()
    );
    path
}

/// The database file at `path`, read as the proxy reads it.
pub(crate) fn open(path: &std::path::Path) -> MmdbSource {
    let bytes = std::fs::read(path).expect("reads");
    MmdbSource::from_bytes(bytes, &path.display().to_string()).expect("opens")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn the_test_database_places_known_networks_and_leaves_others_unknown() {
    let db = open(&test_database());
    assert_eq!(db.database_type(), "GeoIP2-Country");
    let geo = Geo::new(CountryTable::default(), Some(db));
    let cases = [
        ("89.160.20.128", "SE", "EU", true, true, false),
        ("81.2.69.160", "GB", "EU", false, false, true),
        ("2001:218::1", "JP", "AS", false, false, true),
    ];
    for (addr, country, continent, eu, eea, adequate) in cases {
        let at = geo.locate(ip(addr));
        assert_eq!(
            (
                at.country.as_str(),
                at.continent.as_str(),
                at.eu,
                at.eea,
                at.adequate,
                at.known
            ),
            (country, continent, eu, eea, adequate, true),
            "{addr}"
        );
    }
    for nowhere in ["214.1.1.1", "10.0.0.1", "127.0.0.1"] {
        assert_eq!(geo.locate(ip(nowhere)), Location::unknown(), "{nowhere}");
    }
}

#[test]
fn the_config_table_overrides_the_database_most_specific_first() {
    let db = open(&test_database());
    let table = CountryTable::new(vec![
        ("89.160.20.0/24".parse().expect("net"), "US".into()),
        ("10.0.0.0/8".parse().expect("net"), "DE".into()),
        ("10.1.0.0/16".parse().expect("net"), "NO".into()),
    ]);
    let geo = Geo::new(table, Some(db));
    assert_eq!(geo.locate(ip("89.160.20.128")).country, "US");
    let de = geo.locate(ip("10.2.3.4"));
    assert_eq!(
        (de.country.as_str(), de.continent.as_str(), de.eu),
        ("DE", "EU", true)
    );
    let no = geo.locate(ip("10.1.3.4"));
    assert_eq!((no.country.as_str(), no.eu, no.eea), ("NO", false, true));
    assert_eq!(geo.locate(ip("::ffff:10.1.0.9")).country, "NO");
}

#[test]
fn without_a_database_everything_not_in_the_table_is_unknown() {
    let geo = Geo::new(CountryTable::default(), None);
    assert!(!geo.has_database());
    let at = geo.locate(ip("89.160.20.128"));
    assert!(!at.known && !at.eu && !at.eea && !at.adequate);
}

#[test]
fn region_lists_are_consistent() {
    assert!(
        EU.iter()
            .all(|c| in_eea(c) && continent_of(c) == Some("EU"))
    );
    assert!(EEA_ONLY.iter().all(|c| in_eea(c) && !in_eu(c)));
    assert!(
        ADEQUATE
            .iter()
            .all(|c| !in_eea(c) && continent_of(c).is_some())
    );
    assert!(!adequate("US") && !in_eea("US"));
}

#[test]
fn a_region_holds_only_when_every_address_is_in_it() {
    let geo = Geo::new(
        CountryTable::new(vec![
            ("10.0.0.1/32".parse().expect("net"), "DE".into()),
            ("10.0.0.2/32".parse().expect("net"), "FR".into()),
            ("10.0.0.3/32".parse().expect("net"), "US".into()),
        ]),
        None,
    );
    let at = |ips: &[&str]| {
        let addresses: Vec<IpAddr> = ips.iter().map(|a| ip(a)).collect();
        geo.locate_all(&addresses)
    };
    let eu = at(&["10.0.0.1", "10.0.0.2"]);
    assert!(eu.eu && eu.known && eu.country == "mixed");
    let split = at(&["10.0.0.1", "10.0.0.3"]);
    assert!(
        !split.eu && !split.eea,
        "one address outside makes the destination outside"
    );
    let unknown = at(&["10.0.0.1", "10.9.9.9"]);
    assert!(!unknown.known && !unknown.eu);
    assert_eq!(at(&["10.0.0.1"]).country, "DE");
    assert_eq!(at(&[]).country, "unknown");
}
