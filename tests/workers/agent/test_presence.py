"""An agent's registration of its center, server and partitions, in-process against the real
database: agents that start together do not trip over each other."""

import threading

from sqlalchemy import func, select

from app.extensions import db
from app.models import Center, Partition, Server
from workers.agent.presence import register_agent
from workers.agent.settings import AgentSettings, parse_partitions

AGENTS = 6


def settings_for(tmp_path, center: str, server: str) -> AgentSettings:
    image = tmp_path / f"{server}.img"
    image.write_bytes(bytes(4096))
    return AgentSettings(
        server=server, center=center, partitions=parse_partitions(f"/dev/sda1={image}")
    )


def register_at_once(app, settings: list[AgentSettings]) -> list[BaseException]:
    """Each agent registers in its own thread (its own session and connection), all released
    at the same moment, as agents started together by one deployment."""
    start, errors = threading.Barrier(len(settings), timeout=20), []

    def agent(mine: AgentSettings) -> None:
        with app.app_context():
            try:
                start.wait()
                register_agent(mine)
            except BaseException as error:  # noqa: BLE001 (reported below)
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=agent, args=(s,)) for s in settings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_agents_of_a_new_center_starting_together_all_register(app, tmp_path):
    for round_ in range(3):  # a race lost once is enough to fail
        center = f"CENTER-RACE-{round_}"
        servers = [f"race-{round_}-{i}" for i in range(AGENTS)]
        errors = register_at_once(app, [settings_for(tmp_path, center, s) for s in servers])

        assert errors == []
        assert db.session.scalar(select(func.count()).where(Center.name == center)) == 1
        registered = db.session.scalars(
            select(Server.name).join(Center).where(Center.name == center)
        ).all()
        assert sorted(registered) == sorted(servers)


def test_two_agents_of_one_server_starting_together_register_it_once(app, tmp_path):
    settings = settings_for(tmp_path, "CENTER-TWIN", "twin-server")
    errors = register_at_once(app, [settings, settings, settings])

    assert errors == []
    server = db.session.scalar(select(Server).where(Server.name == "twin-server"))
    assert [p.name for p in server.partitions] == ["/dev/sda1"]
    assert db.session.scalar(select(func.count()).select_from(Partition).where(
        Partition.server_id == server.id)) == 1  # fmt: skip
