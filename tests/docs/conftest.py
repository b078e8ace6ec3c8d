"""Print how many documentation examples ran and every skip, with its reason."""


def pytest_terminal_summary(terminalreporter):
    from tests.docs.test_examples import SUMMARY

    if not SUMMARY:
        return
    run = sum(r["run"] for r in SUMMARY.values())
    hidden = sum(r["hidden"] for r in SUMMARY.values())
    skipped = [s for r in SUMMARY.values() for s in r["skipped"]]
    terminalreporter.write_sep("-", "documentation examples")
    terminalreporter.write_line(
        f"{run} examples run ({hidden} hidden setup blocks) on {len(SUMMARY)} pages, "
        f"{len(skipped)} skipped"
    )
    for skip in skipped:
        terminalreporter.write_line(f"  skipped {skip}")
