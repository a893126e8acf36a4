"""``gobot init`` and ``gobot config check``."""

from __future__ import annotations

from pathlib import Path

import click

from gobot.cli.common import config_option, profile_option


def render_config(plugin_models: dict, profile=None) -> str:
    """The commented config file: every core key, then every enabled plugin's section. With ``profile``
    (a ``gobot.profiles.Profile``) its values are written instead of the defaults, each with its reason."""
    from gobot.config import (
        OrchestratorConfig,
        PluginsConfig,
        ServerConfig,
        Settings,
        TradingConfig,
        WatchdogConfig,
    )

    parts = [
        "# gobot configuration. Units and sign conventions are in each comment; docs/configuration.md has more.\n"
        "# Secrets (BINANCE_API_KEY, BINANCE_API_SECRET, OPENAI_API_KEY, TELEGRAM_TOKEN, GOBOT_DASHBOARD_TOKEN,\n"
        "# GOBOT_WEBHOOK_URL) are read from the environment only, never from this file.\n"
        "# Any key can be overridden from the environment: GOBOT_<SECTION>__<KEY>, "
        "e.g. GOBOT_TRADING__MAX_POSITION_USD=25,\n"
        "# GOBOT_PLUGINS__<NAME>__<KEY> for a plugin's, GOBOT_STATE_DIR; a command-line flag wins over both.\n"
        + (_profile_header(profile) if profile is not None else ""),
    ]
    sections = [(Settings, None), (TradingConfig, "trading"), (OrchestratorConfig, "orchestrator"),
                (PluginsConfig, "plugins"), (ServerConfig, "server"), (WatchdogConfig, "watchdog"),
                *((model, f"plugins.{name}") for name, model in sorted(plugin_models.items()))]
    for model, heading in sections:
        parts.append(_section(model, heading, profile))
    if profile is not None:
        parts.extend(_profile_only_sections(profile, {heading for _model, heading in sections}))
    return "\n".join(parts)


PROFILE_NOTE = "profile"  # the comment that starts each reason: "# profile conservative: ..."


def _profile_header(profile) -> str:
    from gobot.profiles import REFERENCE_CAPITAL

    return (f"#\n# Profile '{profile.name}' (gobot init --profile {profile.name}): {profile.summary}.\n"
            f"# Each value it sets carries a '# {PROFILE_NOTE} {profile.name}:' comment saying why. Amounts in the "
            f"portfolio currency are\n# shares of initial_capital_usd = {REFERENCE_CAPITAL:g}: scale them with it "
            "(or keep a plain config and run `gobot start --profile\n"
            f"# {profile.name}`, which scales them). `gobot profiles {profile.name}` lists every value; "
            "docs/risk.md, \"Profiles\".\n")


def _profile_table(profile, heading: str | None) -> tuple[dict, dict]:
    """The profile's values of one section (``plugins.risk_limits``) and their reasons by key."""
    from gobot.profiles import scaled_values

    table: dict = scaled_values(profile)
    for part in (heading.split(".") if heading else []):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    values = {key: value for key, value in table.items() if not isinstance(value, dict)}
    prefix = f"{heading}." if heading else ""
    notes = {key: f"{PROFILE_NOTE} {profile.name}: {profile.reasons[prefix + key]}" for key in values}
    return values, notes


def _section(model, heading: str | None, profile) -> str:
    from gobot.config import commented_toml

    if profile is None:
        return commented_toml(model, heading)
    values, notes = _profile_table(profile, heading)
    return commented_toml(model, heading, model.model_validate(values) if values else None, notes)


def _profile_only_sections(profile, written: set) -> list[str]:
    """The profile's sections that the file has no model-written section for ([strategies.sma_rsi],
    [backtest], a plugin not enabled by default such as [plugins.binance]): only the profile's keys."""
    from gobot.config import _toml_value

    headings = dict.fromkeys(key.rpartition(".")[0] for key in profile.flat())
    parts = []
    for heading in headings:
        if heading in written:
            continue
        values, notes = _profile_table(profile, heading)
        lines = [f"[{heading}]"]
        for key, value in values.items():
            lines += [f"# {notes[key]}", f"{key} = {_toml_value(value)}"]
        parts.append("\n".join(lines) + "\n")
    return parts


def _plugin_models(plugin_set) -> dict:
    from gobot.host.hook_caller import HookCaller

    return dict(HookCaller(plugin_set.pm).collect_sync("gobot_config_model"))


@click.command()
@click.option("--config", "--path", "target", type=click.Path(dir_okay=False), default="config.toml", show_default=True,
              help="Where to write.")
@click.option("-p", "--plugin", "enable", multiple=True, metavar="NAME",
              help="Also write the section of plugin NAME (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--stdout", "to_stdout", is_flag=True, help="Print instead of writing.")
@profile_option("Write a strategy profile's values (risk limits, sizing, timeframe, strategy parameters) instead "
                "of the defaults, each with its reason as a comment.")
def init(target, enable, force, to_stdout, profile_name):
    """Write a config.toml with every setting at its default, each with its unit and meaning.

    Sections are written for the built-in default plugins and for each -p NAME. With --profile
    NAME the profile's values replace the defaults, each with a comment saying why.
    """
    from gobot.host.plugin_manager import build_plugin_set
    from gobot.profiles import get_profile

    profile = get_profile(profile_name) if profile_name else None
    text = render_config(_plugin_models(build_plugin_set(enable=enable)), profile)
    if to_stdout:
        click.echo(text, nl=False)
        return
    path = Path(target)
    if path.exists() and not force:
        from gobot.errors import Refused

        raise Refused(f"{path} exists; use --force to overwrite it")
    path.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {path}. Check it with `gobot config check --config {path}`.")


@click.group()
def config():
    """Configuration commands."""


@config.command("check")
@config_option
@profile_option("Check the file with a strategy profile merged over it, as `gobot start --profile NAME` runs it.")
def check(config_path, profile_name):
    """Validate the whole file: everything `gobot start` checks before it runs.

    Core sections, every enabled plugin's section, secrets in any section (a disabled plugin's
    too), the state folder (created or used, owner-only, writable), secrets in the environment
    long enough to be masked, and the dashboard's address. Every problem is reported as
    file:key: message — fix. Exit status 2 if any (a configuration error, as in every command).
    """
    from gobot.config import (
        ENV_LABEL,
        did_you_mean,
        env_report,
        find_config_path,
        load_plugin_configs,
        load_settings,
        located,
        runtime_problems,
        unique,
    )
    from gobot.errors import ConfigError, ConfigProblem, PluginError
    from gobot.host.hook_caller import HookCaller
    from gobot.host.plugin_manager import build_plugin_set
    from gobot.profiles import get_profile

    profile = get_profile(profile_name) if profile_name else None
    problems: list[ConfigProblem] = []
    core_ok = True
    try:
        settings = load_settings(config_path, profile=profile)
    except ConfigError as exc:
        core_ok = False
        problems.extend(exc.problems)
        # Core mistakes don't hide the plugin sections' ones: check those on default core settings.
        settings = _plugin_part(config_path, profile)
        if settings is None:
            _report(problems)
    label = settings.file_label
    plugin_set = build_plugin_set(enable=settings.plugins.enable, disable=settings.plugins.disable)
    installed = _installed_names(plugin_set)
    for info in plugin_set.failures:
        if info.name not in installed:
            problems.append(ConfigProblem(label, "plugins.enable", f"plugin '{info.name}' {info.reason}",
                                          f"{did_you_mean(info.name, installed)}check the name in `gobot plugins`"))
        else:
            problems.append(ConfigProblem(label, f"plugins.{info.name}", f"plugin '{info.name}' {info.reason}",
                                          "fix or disable the plugin"))
    plugin_configs = {}
    try:
        plugin_configs = load_plugin_configs(settings, HookCaller(plugin_set.pm))
    except ConfigError as exc:
        problems.extend(exc.problems)
    except PluginError as exc:  # e.g. a gobot_config_model that raises: still one line, never a traceback
        problems.append(ConfigProblem(label, f"plugins.{exc.plugin}", str(exc), "fix or disable the plugin"))
    problems.extend(_section_problems(settings, plugin_set, installed))
    if core_ok:  # what `gobot start` checks next: the state folder, secrets in the environment, the dashboard
        problems.extend(runtime_problems(settings))
        problems.extend(_server_problems(settings))
    disable_var = settings.env_sources.get("plugins.disable")
    disable_at = f"{ENV_LABEL}:{disable_var[0]}" if disable_var else f"{label}:plugins.disable"
    for name in settings.plugins.disable:  # ignored, as `gobot start` ignores it; a typo would leave the plugin on
        if name not in installed:
            click.secho(f"warning: {disable_at}: '{name}' matches no installed plugin and is ignored — fix: "
                        f"{did_you_mean(name, installed)}check the name in `gobot plugins`", fg="yellow", err=True)
    from_env = env_report(settings, plugin_configs)
    if problems:
        _show_env(from_env)
        _report(unique(located(settings, problems)))
    where = find_config_path(config_path) or "built-in defaults"
    named = f" with profile {profile.name}" if profile is not None else ""
    click.echo(f"{where}{named}: OK ({len(plugin_set.enabled)} plugins enabled: {', '.join(plugin_set.enabled)})")
    _show_env(from_env)


def _section_problems(settings, plugin_set, installed: set[str]) -> list:
    """A [plugins.<name>] section (in the file or from variables) that no installed plugin owns."""
    import difflib

    from gobot.config import ENV_LABEL, did_you_mean, env_var_name
    from gobot.errors import ConfigProblem

    problems = []
    for name in sorted(settings.plugin_sections):
        info = plugin_set.plugins.get(name)
        if info is None:
            hint = did_you_mean(name, installed)
            from_env = {key.split(".", 2)[2]: var for key, (var, _raw) in settings.env_sources.items()
                        if key.startswith(f"plugins.{name}.")}
            if from_env and set(settings.plugin_sections[name]) <= set(from_env):  # a section only variables make
                key, var = sorted(from_env.items())[0]
                close = difflib.get_close_matches(name, sorted(installed), n=1)
                hint = f"did you mean {env_var_name('plugins', close[0], key)}? " if close else ""
                problems.append(ConfigProblem(ENV_LABEL, var, f"no installed plugin is called '{name}'",
                                              f"{hint}unset it, or install the plugin"))
                continue
            fix = f"{hint}rename the section, or remove it" if hint else "remove the section or install the plugin"
            problems.append(ConfigProblem(settings.file_label, f"plugins.{name}", "no installed plugin has this name",
                                          fix))
    return problems


def _show_env(lines: list[str]) -> None:
    """Which values came from GOBOT_<SECTION>__<KEY> variables (they win over the file)."""
    if lines:
        click.echo(f"From the environment (over the file; a command-line flag wins over both): {len(lines)} value(s)")
        for line in lines:
            click.echo(f"  {line}")


def _installed_names(plugin_set) -> set[str]:
    """Every installed plugin's name, enabled or not (not the names enabled but found nowhere)."""
    return {name for name, info in plugin_set.plugins.items()
            if not (info.status == "failed" and info.reason.startswith("enabled but not installed"))}


def _server_problems(settings) -> list:
    """``[server] enabled`` on a non-loopback host without a strong GOBOT_DASHBOARD_TOKEN: `gobot start` refuses it."""
    import os

    from gobot.errors import ConfigProblem

    if not settings.server.enabled:
        return []
    from gobot.ops.server import TOKEN_ENV, is_loopback, token_weakness

    token = os.environ.get(TOKEN_ENV)
    if is_loopback(settings.server.host):
        return []
    if token:
        weakness = token_weakness(token)
        return [ConfigProblem(settings.file_label, "server.host",
                              f'"{settings.server.host}" is not a loopback address and {TOKEN_ENV} is too weak '
                              f"to guard it: {weakness}",
                              f"set a random one, e.g. {TOKEN_ENV}=$(openssl rand -hex 16), "
                              "or bind to 127.0.0.1")] if weakness else []
    return [ConfigProblem(settings.file_label, "server.host",
                          f'"{settings.server.host}" is not a loopback address and {TOKEN_ENV} is not set: '
                          "anyone who can reach the port could control the bot",
                          f"set {TOKEN_ENV} in the environment, or bind to 127.0.0.1")]


def _plugin_part(config_path, profile=None):
    """Settings made of the file's [plugins] part alone (with ``profile``'s merged over it), or None if even
    that is unusable."""
    import os

    from pydantic import ValidationError

    from gobot.config import (
        PluginsConfig,
        Settings,
        apply_env,
        env_overrides,
        find_config_path,
        read_config,
        split_plugins,
    )
    from gobot.errors import ConfigError

    path = find_config_path(config_path)
    try:
        data = read_config(path) if path is not None else {}
    except ConfigError:
        return None  # already reported by the core check (the file, its syntax)
    if profile is not None:
        from gobot.profiles import apply_profile

        data = apply_profile(data, profile)
    overrides, _ = env_overrides(os.environ)  # their problems are reported by the core check
    data, applied = apply_env(data, [o for o in overrides if o.path[0] == "plugins"])
    core, sections, _ = split_plugins(data.get("plugins", {}), str(path) if path is not None else "(defaults)")
    try:
        settings = Settings(plugins=PluginsConfig.model_validate(core))
    except ValidationError:
        return None  # a [plugins] enable/disable mistake: already reported
    settings.source = str(path) if path is not None else None
    settings.base_dir = str(path.resolve().parent) if path is not None else "."
    settings.plugin_sections = sections
    settings.env_sources = {o.key: (o.var, o.raw) for o in applied}
    return settings


def _report(problems) -> None:
    for problem in problems:
        click.secho(str(problem), fg="red", err=True)
    raise SystemExit(2)  # a configuration error, as in every command
