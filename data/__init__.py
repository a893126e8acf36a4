"""The bundled synthetic demo market: installed as the package ``gobot.demo_data`` (package data of
gobot-trading), read by ``gobot start`` and ``gobot backtest`` when there is no ``data/`` folder. See README.md."""
