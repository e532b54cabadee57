"""The sandbox: a Slack stand-in on loopback, and `resolvemeq sandbox` around it.

- `standin`: the Slack Web API as the bot uses it (the test suite's fake Slack too:
  one stand-in, not two); `signing`: requests built and signed exactly as Slack sends
  them; `loopback`: the threaded HTTP server they run on.
- `people`, `workspace`, `page`, `run`: the sandbox's workspace (people, channels,
  modals, what each person sees), the page's API, and the process that runs the bot
  (`resolvemeq serve`, unchanged) beside it. The page itself is in `static/`.

May import `bot.core` only (and the standard library); the bot reaches the stand-in
over HTTP, like Slack, and nothing of the bot imports this package but the CLI.
"""
