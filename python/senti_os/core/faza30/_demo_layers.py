"""Small simulations of the Senti layers for the demo, shaped like the real ones.

Each class has the method names and return shapes of its FAZA counterpart (orchestrator,
task graph, agent loop with its agent manager, governance, event bus), so the engine reads
and repairs them exactly as it would the real layers. They simulate a system; they hold no
engine logic.
"""

import enum
import uuid
from datetime import datetime

# ---------------------------------------------------------------------------------------
# FAZA 25: the orchestrator


class TaskStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


class Task:
    def __init__(self, name, executor, priority=5, task_type="generic", context=None):
        self.id = uuid.uuid4().hex[:8]
        self.name = name
        self.executor = executor
        self.priority = priority
        self.task_type = task_type
        self.context = dict(context or {})
        self.status = TaskStatus.QUEUED
        self.created_at = datetime.now()
        self.started_at = None
        self.error_message = None

    def to_dict(self):
        return {"id": self.id, "name": self.name, "status": self.status.value, "priority": self.priority,
                "task_type": self.task_type, "context": self.context,
                "created_at": self.created_at.isoformat(),
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "error_message": self.error_message}


class _Queue:
    def __init__(self, tasks):
        self._tasks = tasks

    def size(self):
        return sum(1 for t in self._tasks.values() if t.status == TaskStatus.QUEUED)


class Orchestrator:
    """Like ``OrchestratorManager``, with workers that are always free: a submitted task
    runs at once."""

    def __init__(self, num_workers=3):
        self.num_workers = num_workers
        self.tasks = {}
        self.task_queue = _Queue(self.tasks)

    def submit_task(self, name, executor, priority=5, task_type="generic", context=None):
        task = Task(name, executor, priority, task_type, context)
        self.tasks[task.id] = task
        self._run(task)
        return task.id

    def _run(self, task):
        task.started_at = datetime.now()
        try:
            task.executor(task)
            task.status = TaskStatus.DONE
        except Exception as exc:  # the simulated task failed
            task.status = TaskStatus.ERROR
            task.error_message = str(exc)

    def cancel_task(self, task_id):
        task = self.tasks.get(task_id)
        if task is None or task.status != TaskStatus.QUEUED:
            return False
        task.status = TaskStatus.CANCELLED
        return True

    def list_tasks(self, status_filter=None, task_type_filter=None):
        return [t.to_dict() for t in self.tasks.values()
                if (status_filter is None or t.status == status_filter)
                and (task_type_filter is None or t.task_type == task_type_filter)]

    def get_queue_status(self):
        by = {s.value: 0 for s in TaskStatus}
        for t in self.tasks.values():
            by[t.status.value] += 1
        return {"queue_size": self.task_queue.size(), "is_empty": self.task_queue.size() == 0,
                "total_tasks": len(self.tasks), "tasks_by_status": by}

    def get_worker_status(self):
        return {"num_workers": self.num_workers,
                "workers": [{"worker_id": i, "is_running": True, "current_task": None}
                            for i in range(self.num_workers)]}

    def forget_finished(self, keep=50):
        """Keeps the simulation small, as clear_completed_tasks does."""
        done = [t for t in self.tasks.values() if t.status in (TaskStatus.DONE, TaskStatus.CANCELLED)]
        for t in done[:-keep]:
            del self.tasks[t.id]


# ---------------------------------------------------------------------------------------
# FAZA 27: the task graph


class EdgeType(enum.Enum):
    DEPENDENCY = "dependency"
    WEAK = "weak"


class TaskEdge:
    def __init__(self, source_id, target_id, edge_type=EdgeType.DEPENDENCY, weight=1.0):
        self.source_id = source_id
        self.target_id = target_id
        self.edge_type = edge_type
        self.weight = weight


class TaskNode:
    def __init__(self, node_id):
        self.node_id = node_id
        self.name = node_id


class TaskGraph:
    """Like the FAZA 27 ``TaskGraph``: nodes, edges, remove_edge, has_cycle, get_stats."""

    def __init__(self, graph_id="pipeline"):
        self.graph_id = graph_id
        self.nodes = {}
        self.edges = []

    def connect(self, src, dst, edge_type=EdgeType.DEPENDENCY, weight=1.0):
        for n in (src, dst):
            self.nodes.setdefault(n, TaskNode(n))
        self.edges.append(TaskEdge(src, dst, edge_type, weight))

    def add_edge(self, edge):
        self.connect(edge.source_id, edge.target_id, edge.edge_type, edge.weight)

    def remove_edge(self, source_id, target_id):
        self.edges = [e for e in self.edges if not (e.source_id == source_id and e.target_id == target_id)]

    def get_edges_from(self, node_id):
        return [e for e in self.edges if e.source_id == node_id]

    def has_cycle(self):
        adjacency = {}
        for e in self.edges:
            adjacency.setdefault(e.source_id, []).append(e.target_id)
        state = {}

        def visit(n):
            state[n] = 1
            for m in adjacency.get(n, ()):
                if state.get(m) == 1 or (m not in state and visit(m)):
                    return True
            state[n] = 2
            return False

        return any(n not in state and visit(n) for n in list(self.nodes))

    def get_stats(self):
        return {"graph_id": self.graph_id, "node_count": len(self.nodes), "edge_count": len(self.edges),
                "is_acyclic": not self.has_cycle()}

    # For snapshots: the graph's edges as plain data, and back.
    def to_dict(self):
        return {"nodes": sorted(self.nodes),
                "edges": [[e.source_id, e.target_id, e.edge_type.value, e.weight] for e in self.edges]}

    def load(self, data):
        self.nodes = {n: TaskNode(n) for n in data["nodes"]}
        self.edges = [TaskEdge(s, t, EdgeType(k), w) for s, t, k, w in data["edges"]]


# ---------------------------------------------------------------------------------------
# FAZA 28: agents, their manager and the agent loop


class Agent:
    """Like ``AgentBase``: async lifecycle hooks, tick and error counters."""

    def __init__(self, name, priority=5):
        self.name = name
        self.priority = priority
        self.enabled = True
        self.tick_count = 0
        self.error_count = 0
        self.crashing = False
        self.restarts = 0

    async def on_start(self, context):
        # A restart clears the crashed state and runs one self-check tick.
        self.crashing = False
        self.restarts += 1
        self.tick_count += 1

    async def on_shutdown(self, context):
        pass

    def tick(self):
        if self.crashing:
            self.error_count += 1
        else:
            self.tick_count += 1

    def get_stats(self):
        return {"name": self.name, "priority": self.priority, "enabled": self.enabled,
                "tick_count": self.tick_count, "error_count": self.error_count}


class AgentManager:
    def __init__(self, agents):
        self.agents = {a.name: a for a in agents}

    def get_agent(self, name):
        return self.agents.get(name)

    def list_agents(self, enabled_only=False):
        return [a for a in self.agents.values() if a.enabled or not enabled_only]

    def get_stats(self):
        agents = list(self.agents.values())
        enabled = [a for a in agents if a.enabled]
        return {"total_agents": len(agents), "enabled_agents": len(enabled),
                "disabled_agents": len(agents) - len(enabled), "agents": [a.get_stats() for a in agents]}


class StateContext:
    def __init__(self):
        self._data = {}

    def get(self, key, default=None):
        return self._data.get(key, default)

    def set(self, key, value):
        self._data[key] = value


class Scheduler:
    def reset(self):
        pass


class AgentLoop:
    """Like ``AELController``: agent_manager, scheduler, state_context, get_stats()."""

    def __init__(self, agents):
        self.agent_manager = AgentManager(agents)
        self.scheduler = Scheduler()
        self.state_context = StateContext()
        self._iteration = 0

    def step(self):
        self._iteration += 1
        self.state_context.set("ael_last_tick", datetime.now().isoformat())
        for agent in self.agent_manager.list_agents(enabled_only=True):
            agent.tick()

    def get_stats(self):
        return {"running": True, "iteration": self._iteration, "agent_manager": self.agent_manager.get_stats()}


# ---------------------------------------------------------------------------------------
# FAZA 29: governance


class TakeoverManager:
    def __init__(self):
        self.state = "normal"

    def is_takeover_active(self):
        return self.state in ("takeover", "safe_mode")

    def _can_recover(self):
        return True

    def force_recovery(self):
        self.state = "normal"


class OverrideSystem:
    def __init__(self, on_fallback=None):
        self.stack = []
        self._on_fallback = on_fallback

    def get_stack_size(self):
        return len(self.stack)

    def clear_stack(self):
        n = len(self.stack)
        self.stack.clear()
        return n

    def instability_fallback(self, score):
        self.stack.append(("fallback", score))
        if self._on_fallback is not None:
            self._on_fallback()
        return f"ovr_{len(self.stack)}"





class Governance:
    """Like ``GovernanceController``: get_risk (total_risk 0-100), get_status,
    get_takeover_state, get_statistics, override_system, takeover_manager."""

    def __init__(self):
        self.total_risk = 12.0
        self.takeover_manager = TakeoverManager()
        self.override_system = OverrideSystem(on_fallback=self._safe_policies)
        self.block_count = 0

    def _safe_policies(self):
        # A fallback override puts conservative policies in force: the risk they cause drops.
        self.total_risk = min(self.total_risk, 30.0)

    def get_risk(self):
        return {"system_risk": self.total_risk, "agent_risk": 0.0, "graph_risk": 0.0,
                "total_risk": self.total_risk, "critical_factors": [], "factor_count": 0,
                "timestamp": datetime.now().isoformat()}

    def get_status(self):
        return {"running": True, "override_active": bool(self.override_system.stack),
                "takeover_state": self.takeover_manager.state, "timestamp": datetime.now().isoformat()}

    def get_takeover_state(self):
        return self.takeover_manager.state

    def get_statistics(self):
        return {"rule_engine": {"block_count": self.block_count}}


class EventBus:
    """Like the FAZA 28 ``EventBus``: emit(event_type, source, data=None)."""

    def __init__(self):
        self.events = []

    def emit(self, event_type, source, data=None, metadata=None):
        self.events.append((event_type, source, data))
