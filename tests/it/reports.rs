//! The report readers on files in the shapes real tools write (`fixtures/reports/`, see
//! its README for which tool each imitates), and on hostile input.

use std::io::Cursor;
use std::path::Path;

use wasmbuild::reports::{Gathered, read_file};

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/reports")
        .join(name);
    std::fs::read(path).unwrap()
}

fn gather(format: &str, name: &str) -> Gathered {
    let mut gathered = Gathered::default();
    read_file(format, name, Cursor::new(sample(name)), &mut gathered)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    gathered
}

/// Counts by status, in the order SUCCEEDED, FAILED, SKIPPED, ERROR, UNKNOWN.
fn counts(g: &Gathered) -> [u64; 5] {
    ["SUCCEEDED", "FAILED", "SKIPPED", "ERROR", "UNKNOWN"]
        .map(|s| g.counts.get(s).copied().unwrap_or(0))
}

fn case<'a>(g: &'a Gathered, name: &str) -> &'a wasmbuild::reports::TestCase {
    g.cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name}: {:?}", g.cases))
}

#[test]
fn junit_from_pytest_surefire_jest_and_go() {
    let g = gather("JUNITXML", "pytest-junit.xml");
    assert_eq!(counts(&g), [1, 1, 1, 1, 0]);
    assert_eq!(g.duration_ns, 6_000_000);
    let failed = case(&g, "test_div_zero");
    assert_eq!(failed.prefix, "tests.test_calc");
    assert_eq!(
        failed.message.as_deref(),
        Some("ZeroDivisionError: division by zero")
    );
    assert_eq!(failed.test_raw_data_path, "pytest-junit.xml");
    assert_eq!(
        case(&g, "test_fixture").message.as_deref(),
        Some("failed on setup with \"OSError: [Errno 2] No such file\"")
    );

    let g = gather("JUNITXML", "surefire-junit.xml");
    assert_eq!(counts(&g), [1, 1, 1, 0, 0]);
    assert_eq!(
        case(&g, "testFails").message.as_deref(),
        Some("expected: <1> but was: <2>")
    );

    let g = gather("JUNITXML", "jest-junit.xml");
    assert_eq!(counts(&g), [2, 1, 0, 0, 0]);
    let failed = case(&g, "sum rejects strings");
    assert!(
        failed
            .message
            .as_deref()
            .unwrap()
            .starts_with("Error: expect(received).toThrow()"),
        "{failed:?}"
    );

    let g = gather("JUNITXML", "go-junit-report.xml");
    assert_eq!(counts(&g), [1, 1, 1, 0, 0]);
    assert_eq!(case(&g, "TestDiv").prefix, "example.com/calc");
}

#[test]
fn testng_nunit_trx_and_cucumber() {
    let g = gather("TESTNGXML", "testng-results.xml");
    assert_eq!(
        counts(&g),
        [2, 1, 1, 0, 0],
        "the config method is no test case"
    );
    assert_eq!(g.duration_ns, 142_000_000);
    let failed = case(&g, "totals");
    assert_eq!(failed.prefix, "com.example.CartTest");
    assert_eq!(
        failed.message.as_deref(),
        Some("expected [10] but found [12]")
    );

    for (format, file) in [
        ("NUNITXML", "nunit2-TestResult.xml"),
        ("NUNIT3XML", "nunit3-TestResult.xml"),
    ] {
        let g = gather(format, file);
        assert_eq!(counts(&g), [1, 1, 1, 1, 0], "{file}");
        let failed = case(&g, "Divides");
        assert_eq!(failed.prefix, "Calc.CalculatorTests", "{file}");
        assert_eq!(failed.status, "FAILED");
        assert!(
            failed
                .message
                .as_deref()
                .unwrap()
                .starts_with("Expected: 2"),
            "{file}"
        );
        assert_eq!(case(&g, "Throws").status, "ERROR", "{file}");
    }

    let g = gather("VISUALSTUDIOTRX", "dotnet.trx");
    assert_eq!(counts(&g), [1, 1, 1, 0, 0]);
    assert_eq!(case(&g, "Adds").duration_in_nano_seconds, 12_345_600);
    assert_eq!(case(&g, "Adds").prefix, "Calc.Tests.CalculatorTests");
    assert_eq!(case(&g, "Later").prefix, "Calc.Tests.LaterTests");
    assert!(
        case(&g, "Divides")
            .message
            .as_deref()
            .unwrap()
            .contains("Expected: 2")
    );

    let g = gather("CUCUMBERJSON", "cucumber.json");
    assert_eq!(counts(&g), [1, 1, 1, 0, 0]);
    assert_eq!(
        case(&g, "A valid card is charged").duration_in_nano_seconds,
        4_600_000
    );
    let failed = case(&g, "An expired card is refused");
    assert_eq!(failed.prefix, "Checkout");
    assert!(
        failed
            .message
            .as_deref()
            .unwrap()
            .contains("expected 'declined'")
    );
}

fn file<'a>(g: &'a Gathered, path: &str) -> &'a wasmbuild::reports::FileCoverage {
    g.files
        .iter()
        .find(|f| f.file_path == path)
        .unwrap_or_else(|| panic!("no file {path}: {:?}", g.files))
}

#[test]
fn coverage_from_istanbul_jacoco_clover_and_simplecov() {
    let g = gather("COBERTURAXML", "istanbul-cobertura.xml");
    assert_eq!((g.lines, g.branches), ((5, 2), (2, 2)));
    let sum = file(&g, "src/sum.js");
    assert_eq!(
        (sum.lines_covered, sum.lines_missed),
        (3, 1),
        "method lines not twice"
    );
    assert_eq!(sum.line_coverage_percentage, 75.0);
    assert_eq!(sum.branch_coverage_percentage, 50.0);

    let g = gather("JACOCOXML", "jacoco.xml");
    assert_eq!((g.lines, g.branches), ((4, 2), (3, 3)));
    let calc = file(&g, "com/example/calc/Calculator.java");
    assert_eq!((calc.lines_covered, calc.lines_missed), (3, 1));
    assert_eq!((calc.branches_covered, calc.branches_missed), (1, 1));

    let g = gather("CLOVERXML", "clover.xml");
    assert_eq!(
        (g.lines, g.branches),
        ((6, 2), (1, 1)),
        "class metrics not twice"
    );
    assert_eq!(
        file(&g, "/build/src/Calculator.php").line_coverage_percentage,
        66.67
    );

    let g = gather("SIMPLECOV", "simplecov-resultset.json");
    assert_eq!((g.lines, g.branches), ((7, 1), (1, 1)));
    assert_eq!(
        file(&g, "/build/lib/calc.rb").line_coverage_percentage,
        80.0
    );
}

#[test]
fn hostile_or_foreign_files_are_refused_with_a_reason() {
    let read = |format: &str, bytes: &[u8]| {
        let mut gathered = Gathered::default();
        read_file(format, "x", Cursor::new(bytes.to_vec()), &mut gathered).map(|()| gathered)
    };
    // A billion laughs: the entities are never expanded.
    let mut laughs =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let refs = format!(
            "&lol{};",
            if i == 1 {
                String::new()
            } else {
                (i - 1).to_string()
            }
        )
        .repeat(10);
        laughs.push_str(&format!("<!ENTITY lol{i} \"{refs}\">\n"));
    }
    laughs.push_str("]>\n<testsuites><testsuite name=\"&lol9;\"><testcase name=\"a&lol9;\" classname=\"c\"><failure>&lol9;</failure></testcase></testsuite></testsuites>");
    let started = std::time::Instant::now();
    let g = read("JUNITXML", laughs.as_bytes()).unwrap();
    assert!(started.elapsed().as_secs() < 2);
    assert_eq!(g.cases[0].name, "a&lol9;");
    assert_eq!(g.cases[0].message.as_deref(), Some("&lol9;"));
    // An external entity is not fetched nor read.
    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE t [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><testsuite><testcase name=\"&x;\"/></testsuite>";
    let g = read("JUNITXML", xxe.as_bytes()).unwrap();
    assert_eq!(g.cases[0].name, "&x;");

    for (format, bytes, reason) in [
        (
            "JUNITXML",
            &b"<testsuite><testcase name='a'>"[..],
            "malformed",
        ),
        (
            "JUNITXML",
            &b"<html><body/></html>"[..],
            "root element is <html>",
        ),
        ("JUNITXML", &b"\x00\x01\x02\xff\xfe garbage"[..], ""),
        ("JUNITXML", &b""[..], "no XML element"),
        (
            "COBERTURAXML",
            &sample("pytest-junit.xml")[..],
            "root element is <testsuites>",
        ),
        (
            "CUCUMBERJSON",
            &b"{\"not\": \"an array\"}"[..],
            "expected an array",
        ),
        ("SIMPLECOV", &b"[1, 2]"[..], "expected an object"),
        ("SIMPLECOV", &b"{\"a\": "[..], "malformed JSON"),
        (
            "PLAINTEXT",
            &b"3 passed"[..],
            "unknown report format PLAINTEXT",
        ),
    ] {
        let error = read(format, bytes).expect_err(format);
        assert!(error.contains(reason), "{format}: {error}");
    }
    let deep = format!("<testsuites>{}", "<a>".repeat(100_000));
    assert!(
        read("JUNITXML", deep.as_bytes())
            .unwrap_err()
            .contains("MAX_XML_DEPTH")
    );
}

#[test]
fn a_report_past_the_case_limit_keeps_exact_counts_and_says_truncated() {
    let extra = 1_000;
    let total = wasmbuild::reports::MAX_TEST_CASES + extra;
    let mut xml = String::from("<testsuite name=\"big\">");
    for i in 0..total {
        if i % 1000 == 0 {
            xml.push_str("<testcase name=\"f\"><failure/></testcase>");
        } else {
            xml.push_str("<testcase name=\"t\"/>");
        }
    }
    xml.push_str("</testsuite>");
    let mut g = Gathered::default();
    read_file("JUNITXML", "big.xml", Cursor::new(xml.into_bytes()), &mut g).unwrap();
    assert!(g.truncated);
    assert_eq!(g.cases.len(), wasmbuild::reports::MAX_TEST_CASES);
    assert_eq!(g.total() as usize, total);
    assert_eq!(g.counts["FAILED"] as usize, total.div_ceil(1000));
}
