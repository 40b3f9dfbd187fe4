"""The controller's auto-repair loop heals a crashing agent while the host keeps running.

The "system" is a stand-in for an agent pool: its metrics come from a provider and the
restart is a registered repair action. The loop runs on the engine's own runtime; the
provider and the action are called on this asyncio event loop.

Run: python docs/examples/03_controller_autorepair_loop.py
"""

import asyncio
import tempfile

from senti_os.core.faza30 import AutorepairConfig, AutorepairMode, EventType, create_healing_controller


class AgentPool:
    def __init__(self):
        self.crashing = {"crawler"}
        self.restarts = []

    def metrics(self):
        # Canonical FAZA 28 keys: the worst agent's failure rate and who is failing.
        rate = 0.8 if self.crashing else 0.0
        return {"agent_failure_rate": rate, "failing_agents": sorted(self.crashing), "active_agent_count": 3}

    def restart_agent(self, name):
        self.restarts.append(name)
        self.crashing.discard(name)
        return True


async def main():
    pool = AgentPool()
    with tempfile.TemporaryDirectory(prefix="faza30-example-") as snapshot_dir:
        config = AutorepairConfig(mode=AutorepairMode.BALANCED, interval_seconds=0.05, cooldown_seconds=0.0)
        controller = create_healing_controller(autorepair_config=config, snapshot_dir=snapshot_dir)
        layer = controller.get_integration_layer()
        layer.register_metric_provider("faza28", pool.metrics)
        layer.register_repair_action("restart_agent", pool.restart_agent)

        verified = asyncio.Event()
        controller.get_event_hooks().subscribe(EventType.REPAIR_VERIFIED, lambda event: verified.set())

        before = controller.get_health()
        print(f"health before: {before['overall_score']:.1f} ({before['level']})")

        await controller.start()
        assert controller.is_running()
        try:
            await asyncio.wait_for(verified.wait(), timeout=10.0)
            # The fault stays active until a later detection sees the layer without it.
            for _ in range(200):
                if controller.get_status()["active_faults"] == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            await controller.stop()  # waits for the iteration in progress
        assert not controller.is_running()

        after = controller.get_health()
        status = controller.get_status()
        stats = controller.get_statistics()
        print(f"health after:  {after['overall_score']:.1f} ({after['level']})")
        print(f"restarted: {pool.restarts}; active faults: {status['active_faults']}; "
              f"repairs attempted: {stats['autorepair']['repairs_attempted']}")

        assert pool.restarts == ["crawler"]
        assert after["overall_score"] > before["overall_score"]
        assert status["active_faults"] == 0 and status["autorepair_mode"] == "balanced"
        assert stats["autorepair"]["repairs_successful"] == 1
        assert stats["pipeline"]["successful_cycles"] >= 1
        assert controller.get_faults(include_resolved=True)["faults"][0]["resolved"] is True

        # The mode can change at any time; DISABLED makes the loop observe only.
        controller.set_autorepair_mode("disabled")
        assert controller.get_autorepair_engine().get_config().mode is AutorepairMode.DISABLED
        history = [e.event_type for e in controller.get_event_hooks().get_event_history(100)]
        assert history[0] == "controller_initialized"
        assert {"controller_started", "controller_stopped", "autorepair_mode_changed"} <= set(history)


asyncio.run(main())
