"""Knowledge-base articles as files: the format, every problem named by file and field, KB_DIR."""

from __future__ import annotations

import shutil
from pathlib import Path

import frontmatter
import pytest

from bot.agent import KnowledgeBaseAgent, TicketInput
from bot.agent.articles import (
    KnowledgeBaseError,
    check_directory,
    load_articles,
    load_library,
    parse_article,
    shipped_directory,
)
from bot.agent.routing import team_for

SHIPPED = Path(str(shipped_directory()))

ARTICLE = """\
---
id: expense_tool
title: Expense tool won't load
category: software
self_service: true
success_probability: 0.9
estimated_time: 5 minutes
examples:
  - the expense tool won't load
  - concur is stuck on the login page
  - can't submit my expense report in concur
---
Use the intranet link, not an old bookmark.

1. Open Concur from the intranet link.
2. Clear the browser cache and sign in again,
   with your work account.
3. If it still fails, reply with a screenshot.
"""


@pytest.fixture()
def kb_copy(tmp_path) -> Path:
    for name in ("vpn.md", "printer.md"):
        shutil.copy(SHIPPED / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, **changes) -> None:
    """Change an article file's front matter; None removes the field."""
    post = frontmatter.loads(path.read_text())
    for name, value in changes.items():
        if value is None:
            post.metadata.pop(name, None)
        else:
            post.metadata[name] = value
    path.write_text(frontmatter.dumps(post))


def test_an_article_file_reads_front_matter_and_numbered_steps():
    article = parse_article(ARTICLE, origin="expense_tool.md")
    assert (article.id, article.category) == ("expense_tool", "software")
    assert article.title == "Expense tool won't load"
    assert article.team == team_for("software")  # no team given: the category's
    assert article.steps == (
        "Open Concur from the intranet link.",
        "Clear the browser cache and sign in again, with your work account.",
        "If it still fails, reply with a screenshot.",
    )
    assert article.examples[1] == "concur is stuck on the login page"
    assert (article.self_service, article.success_probability, article.severity) == (True, 0.9, "low")


def test_the_shipped_articles_follow_the_format():
    articles, problems = check_directory(SHIPPED, label="")
    assert problems == ()
    assert len(articles) >= 14
    assert not list(SHIPPED.glob("*.json"))  # one format, not two
    for article in articles:
        assert 3 <= len(article.steps) <= 8
        assert len(article.examples) >= 10
        assert 0 < article.success_probability <= 1 and article.team


def test_articles_that_need_it_to_act_are_not_self_service():
    it_must_act = {a.id for a in load_articles() if not a.self_service}
    assert it_must_act == {"software_access", "shared_drive_access", "new_hire_setup"}


@pytest.mark.parametrize(("changes", "line"), [
    ({"title": None}, "printer.md: title: missing (required)"),
    ({"title": ""}, "printer.md: title: expected non-empty text"),
    ({"category": "toaster"}, "printer.md: category: 'toaster' is not one of"),
    ({"success_probability": 1.5}, "printer.md: success_probability: 1.5: expected a number from 0 to 1"),
    ({"success_probability": "high"}, "printer.md: success_probability: expected a number from 0 to 1"),
    ({"self_service": "yes please"}, "printer.md: self_service: expected true or false"),
    ({"severity": "urgent"}, "printer.md: severity: 'urgent': expected low, medium or high"),
    ({"examples": ["paper jam"]}, "printer.md: examples: expected at least 3 phrasings, got 1"),
    ({"examples": None}, "printer.md: examples: missing (required)"),
    ({"examples": ["paper jam", "", "toner low"]}, "printer.md: examples[2]: expected non-empty text"),
    ({"examples": ["paper jam", "Paper  jam", "toner low"]},
     "printer.md: examples: 'Paper  jam' is listed twice"),
    ({"examples": "paper jam"}, "printer.md: examples: expected a list of phrasings"),
    ({"keywords": ["printer"]}, "printer.md: keywords: unknown field"),
    ({"id": "Printer Jam!"}, "printer.md: id: 'Printer Jam!': expected lowercase letters, digits and _"),
])
def test_a_bad_field_is_named_with_its_file(kb_copy, changes, line):
    _edit(kb_copy / "printer.md", **changes)
    articles, problems = check_directory(kb_copy, label="kb")
    assert [a.id for a in articles] == ["vpn"]  # the good one is still read
    assert len(problems) == 1
    assert problems[0].startswith(f"kb/{line}")


def test_every_problem_of_a_file_is_reported_at_once(kb_copy):
    (kb_copy / "broken.md").write_text(
        "---\nid: Broken\ntitle: x\ncategory: toaster\nself_service: maybe\n---\nNo steps here.\n")
    _, problems = check_directory(kb_copy, label="kb")
    fields = [p.split(": ")[1] for p in problems]
    assert fields == ["id", "category", "self_service", "success_probability", "estimated_time",
                      "examples", "steps"]
    assert all(p.startswith("kb/broken.md: ") for p in problems)


@pytest.mark.parametrize(("text", "line"), [
    ("no front matter at all\n\n1. one\n", "bad.md: front matter: missing"),
    ("---\nid: [unclosed\n---\n1. one\n", "bad.md: front matter: not valid YAML (line"),
    ("---\n- a list\n- not a mapping\n---\n1. one\n", "bad.md: front matter:"),
])
def test_unreadable_front_matter_is_named(tmp_path, text, line):
    (tmp_path / "bad.md").write_text(text)
    _, problems = check_directory(tmp_path, label="")
    assert problems and problems[0].startswith(line)


def test_steps_must_be_a_numbered_list(kb_copy):
    post = frontmatter.loads((kb_copy / "printer.md").read_text())
    post.content = "- a bullet\n- another bullet\n"
    (kb_copy / "printer.md").write_text(frontmatter.dumps(post))
    _, problems = check_directory(kb_copy, label="")
    assert problems == (
        "printer.md: steps: no numbered list in the body (write the steps as '1. ...', '2. ...')",)


def test_not_utf8_is_named(kb_copy):
    (kb_copy / "latin.md").write_bytes("---\ntitle: caf\xe9\n---\n".encode("latin-1"))
    _, problems = check_directory(kb_copy, label="")
    assert problems == ("latin.md: file: not readable as UTF-8 text (UnicodeDecodeError)",)


def test_duplicate_ids_name_both_files(kb_copy):
    shutil.copy(kb_copy / "vpn.md", kb_copy / "vpn_copy.md")
    with pytest.raises(KnowledgeBaseError) as raised:
        load_articles(kb_copy)
    assert raised.value.problems == (f"{kb_copy}/vpn_copy.md: id: 'vpn' is already used by {kb_copy}/vpn.md",)


def test_an_empty_or_missing_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not an article")
    with pytest.raises(KnowledgeBaseError, match=r"no articles \(\*\.md files\)"):
        load_articles(tmp_path)
    with pytest.raises(KnowledgeBaseError, match="not a folder"):
        load_articles(tmp_path / "missing")


def test_an_article_without_a_team_uses_the_routing_table(kb_copy):
    _edit(kb_copy / "printer.md", team=None)
    [printer] = [a for a in load_articles(kb_copy) if a.id == "printer"]
    assert printer.team == team_for("printer") == "Desktop Support"


# --- KB_DIR and KB_SHIPPED -----------------------------------------------------------

def test_kb_dir_adds_to_the_shipped_articles_and_replaces_by_id(tmp_path):
    (tmp_path / "expense_tool.md").write_text(ARTICLE)
    own_vpn = (SHIPPED / "vpn.md").read_text().replace(
        "title: VPN won't connect or keeps disconnecting", "title: Our GlobalProtect VPN")
    (tmp_path / "vpn.md").write_text(own_vpn)
    library = {a.id: a for a in load_library(tmp_path)}
    assert {a.id for a in load_articles()} | {"expense_tool"} == set(library)
    assert library["vpn"].title == "Our GlobalProtect VPN"
    agent = KnowledgeBaseAgent(tuple(library.values()))
    answer = agent.analyse(TicketInput(1, "concur won't load my expense report"))
    assert answer.source == "expense_tool" and answer.recommended_action == "auto_resolve"
    assert "Our GlobalProtect VPN" in agent.analyse(TicketInput(1, "my vpn keeps dropping")).reasoning


def test_kb_shipped_false_answers_from_kb_dir_alone(tmp_path):
    (tmp_path / "expense_tool.md").write_text(ARTICLE)
    assert [a.id for a in load_library(tmp_path, shipped=False)] == ["expense_tool"]
    agent = KnowledgeBaseAgent(load_library(tmp_path, shipped=False))
    assert [a.id for a in agent.articles] == ["expense_tool"]
    # A shipped topic the company left out is "no article", not forced onto its own.
    vpn = agent.analyse(TicketInput(1, "my vpn keeps dropping"))
    assert (vpn.source, vpn.recommended_action) == ("", "request_clarification")
    assert agent.analyse(TicketInput(1, "concur is stuck on the login page")).source == "expense_tool"
    with pytest.raises(KnowledgeBaseError, match="KB_SHIPPED=false needs a KB_DIR"):
        load_library(None, shipped=False)


def test_a_broken_kb_dir_is_refused_whole(kb_copy):
    _edit(kb_copy / "printer.md", success_probability=2)
    with pytest.raises(KnowledgeBaseError, match="printer.md: success_probability"):
        load_library(kb_copy)
