"""README's picture of the sandbox, taken the way the browser tests drive it.

    PYTHONPATH=$PWD python -m tests.browser.screenshot docs/sandbox.png

Starts its own sandbox (a temporary data folder), has the requester ask two of the
guide's examples, the team member take and resolve the second, and photographs the
requester's #helpdesk at 1280x800 with that ticket's thread open.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.browser.conftest import SandboxPage, chrome
from tests.browser.test_sandbox_page import REQUESTER, TEAM, ask_example, open_thread
from tests.support.sandbox_process import SandboxProcess


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as data, SandboxProcess(Path(data)) as sandbox:
        driver = chrome(1280, 800)
        try:
            page = SandboxPage(driver, sandbox.url, Path(data))
            page.size(1280, 800)
            first = ask_example(page, "resolves")
            page.wait(lambda: page.message(f"#{first}", button="feedback_no"), "the first answer")
            second = ask_example(page, "routes")
            page.as_person(TEAM)
            page.go("identity-access")
            page.click(lambda: page.message(f"#{second}", button="team_take"), "team_take", "Take it")
            page.click(lambda: page.message(f"#{second}", button="team_resolve"), "team_resolve", "Resolve")
            page.fill_modal("Added you to the Finance drive group; sign out and in again to see it.")
            page.as_person(REQUESTER)
            page.go("helpdesk")
            open_thread(page, second, "Finance drive group")
            driver.execute_script(
                "for (const id of ['messages', 'thread-messages']) {"
                " const box = document.getElementById(id); box.scrollTop = box.scrollHeight; }")
            driver.find_element(By.ID, "composer-text").send_keys("Thanks, that was quick!")
            driver.execute_script("document.activeElement.blur()")
            # The pointer away from the messages: no hover toolbar in the picture.
            ActionChains(driver).move_to_element(driver.find_element(By.ID, "channel-title")).perform()
            target.write_bytes(driver.get_screenshot_as_png())
        finally:
            driver.quit()
    print(f"wrote {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/sandbox.png"))
