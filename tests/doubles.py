"""Test doubles shaped like the real FAZA layer classes.

Each class has the method names, signatures and return shapes of its counterpart in
``senti_os.core.faza25`` / ``faza27`` / ``faza28`` / ``faza28_5`` / ``faza29`` (the layers FAZA 30
integrates with), so tests exercise the same code paths as with the real objects. What the
real classes do on their own (workers dequeuing tasks, the agent loop ticking, governance
evaluating rules) is driven by small helpers instead (``start``, ``finish``, ``run_iteration``,
``block``, ``takeover`` ...), so tests stay deterministic and need no background tasks.

``probe_layers(faulty)`` builds objects with the reference integration layer's duck-typed
probe names instead (``get_queue_size``, ``get_agent_stats`` ...), for compatibility tests.

The minimal doubles (``EdgeListGraph``, ``NamedAgentManager``, ``TaskDictOrchestrator``) carry
only what a repair engine acts on, built straight from the data a test names (any cycle, fixed
task ids), and record what was done to them (``removed``, ``log``, ``submitted``, ``cancelled``).
"""

from __future__ import annotations

import asyncio
import enum
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional

__all__ = [
    "TaskStatus", "Task", "PriorityTaskQueue", "Orchestrator",
    "EdgeType", "TaskEdge", "TaskNode", "TaskGraph",
    "AgentBase", "FailingAgent", "AgentManager", "Scheduler", "StateContext", "Event", "EventBus",
    "AELController",
    "AnomalyDetector", "StabilityEngine", "StrategyAdapter", "MetaEvaluationLayer",
    "TakeoverState", "TakeoverManager", "OverrideSystem", "FeedbackLoop", "RuleEngine",
    "GovernanceController",
    "PublishOnlyBus", "probe_layers",
    "FAULTS8", "executor", "EdgeListGraph", "RecordingAgent", "NamedAgentManager", "TaskDictOrchestrator",
]


# =============================================================================================
# FAZA 25: orchestrator


class TaskStatus(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


async def _noop(task):
    return None


@dataclass
class Task:
    name: str
    executor: Callable = _noop
    priority: int = 5
    task_type: str = "generic"
    context: Dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: TaskStatus = TaskStatus.QUEUED
    created_at: datetime = field(default_factory=datetime.now)
    started_at: Optional[datetime] = None
    completed_at: Optional[datetime] = None
    error_message: Optional[str] = None
    result: Any = None

    def to_dict(self):
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status.value,
            "priority": self.priority,
            "task_type": self.task_type,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "error_message": self.error_message,
            "context": self.context,
            "has_result": self.result is not None,
        }


class PriorityTaskQueue:
    def __init__(self):
        self._tasks: List[Task] = []
        self._lock = threading.Lock()

    def put(self, task):
        with self._lock:
            self._tasks.append(task)

    def size(self):
        with self._lock:
            return len(self._tasks)

    def is_empty(self):
        return self.size() == 0

    def remove_task(self, task_id):
        with self._lock:
            for i, t in enumerate(self._tasks):
                if t.id == task_id:
                    t.status = TaskStatus.CANCELLED
                    del self._tasks[i]
                    return True
            return False

    def take(self, task_id):
        with self._lock:
            self._tasks = [t for t in self._tasks if t.id != task_id]

    def get_all_tasks(self):
        with self._lock:
            return list(self._tasks)


class _Worker:
    def __init__(self, worker_id):
        self.worker_id = worker_id
        self.is_running = True
        self.current_task: Optional[Task] = None

    def get_status(self):
        return {
            "worker_id": self.worker_id,
            "is_running": self.is_running,
            "current_task": self.current_task.to_dict() if self.current_task else None,
        }


class Orchestrator:
    """``OrchestratorManager``: ``tasks`` registry, ``task_queue``, ``submit_task``,
    ``cancel_task``, ``list_tasks``, ``get_queue_status``, ``get_worker_status``."""

    def __init__(self, num_workers=3, running=True):
        self.num_workers = num_workers
        self.task_queue = PriorityTaskQueue()
        self.workers = [_Worker(i) for i in range(num_workers)]
        self.tasks: Dict[str, Task] = {}
        self._is_running = running
        self.submitted: List[dict] = []

    def submit_task(self, name, executor, priority=5, task_type="generic", context=None):
        if not self._is_running:
            raise RuntimeError("OrchestratorManager is not running. Call start() first.")
        task = Task(name=name, executor=executor, priority=priority, task_type=task_type, context=context or {})
        self.tasks[task.id] = task
        self.task_queue.put(task)
        self.submitted.append({"name": name, "executor": executor, "priority": priority,
                               "task_type": task_type, "context": context})
        return task.id

    def cancel_task(self, task_id):
        task = self.tasks.get(task_id)
        if not task:
            return False
        if task.status == TaskStatus.QUEUED:
            return self.task_queue.remove_task(task_id)
        return False

    def get_task_status(self, task_id):
        task = self.tasks.get(task_id)
        return task.to_dict() if task else None

    def list_tasks(self, status_filter=None, task_type_filter=None):
        tasks = list(self.tasks.values())
        if status_filter:
            tasks = [t for t in tasks if t.status == status_filter]
        if task_type_filter:
            tasks = [t for t in tasks if t.task_type == task_type_filter]
        tasks.sort(key=lambda t: t.created_at, reverse=True)
        return [t.to_dict() for t in tasks]

    def get_queue_status(self):
        by = {s.value: 0 for s in TaskStatus}
        for t in self.tasks.values():
            by[t.status.value] += 1
        return {
            "queue_size": self.task_queue.size(),
            "is_empty": self.task_queue.is_empty(),
            "total_tasks": len(self.tasks),
            "tasks_by_status": by,
        }

    def get_worker_status(self):
        return {"num_workers": len(self.workers), "workers": [w.get_status() for w in self.workers]}

    def get_system_status(self):
        return {"is_running": self._is_running, "num_workers": self.num_workers,
                "queue": self.get_queue_status(), "workers": self.get_worker_status()}

    def clear_completed_tasks(self, keep_recent=100):
        done = [t for t in self.tasks.values()
                if t.status in (TaskStatus.DONE, TaskStatus.ERROR, TaskStatus.CANCELLED)]
        done.sort(key=lambda t: t.completed_at or t.created_at, reverse=True)
        for t in done[keep_recent:]:
            del self.tasks[t.id]
        return len(done[keep_recent:])

    # ---- drivers standing in for the workers

    def add(self, name="task", priority=5, **kw):
        """Submits a task and returns it (the real submit_task returns only the id)."""
        return self.tasks[self.submit_task(name, kw.pop("executor", _noop), priority, **kw)]

    def start(self, task_id, started_at=None):
        """A free worker picks the task up."""
        task = self.tasks[task_id]
        self.task_queue.take(task_id)
        task.status = TaskStatus.RUNNING
        task.started_at = started_at or datetime.now()
        for w in self.workers:
            if w.current_task is None:
                w.current_task = task
                break
        return task

    def finish(self, task_id, ok=True, error="boom"):
        task = self.tasks[task_id]
        if task.status == TaskStatus.QUEUED:
            self.start(task_id)
        task.status = TaskStatus.DONE if ok else TaskStatus.ERROR
        task.error_message = None if ok else error
        task.completed_at = datetime.now()
        for w in self.workers:
            if w.current_task is task:
                w.current_task = None
        return task


# =============================================================================================
# FAZA 27: task graph


class EdgeType(enum.Enum):
    DEPENDENCY = "dependency"
    CONSTRAINT = "constraint"
    DATA_FLOW = "data_flow"
    CONDITIONAL = "conditional"
    WEAK = "weak"


class TaskEdge:
    def __init__(self, source_id, target_id, edge_type=EdgeType.DEPENDENCY, weight=1.0, constraints=None, metadata=None):
        self.source_id = source_id
        self.target_id = target_id
        self.edge_type = edge_type
        self.weight = weight
        self.constraints = constraints or {}
        self.metadata = metadata or {}

    def is_weak(self):
        return self.edge_type == EdgeType.WEAK

    def __repr__(self):
        return f"<TaskEdge {self.source_id} -> {self.target_id} ({self.edge_type.value}, {self.weight})>"


class TaskNode:
    def __init__(self, node_id, name=None, priority=5):
        self.node_id = node_id
        self.name = name or node_id
        self.priority = priority
        self.dependencies = set()
        self.dependents = set()


class TaskGraph:
    """FAZA 27 ``TaskGraph``: ``nodes`` (id -> TaskNode), ``edges`` (list of TaskEdge),
    ``add_edge`` (refuses a DEPENDENCY/CONSTRAINT edge that closes a cycle; a WEAK one may),
    ``remove_edge``, ``get_edges_from``, ``has_cycle``, ``get_stats``."""

    def __init__(self, graph_id="default", metadata=None):
        self.graph_id = graph_id
        self.metadata = metadata or {}
        self.nodes: Dict[str, TaskNode] = {}
        self.edges: List[TaskEdge] = []
        self._adj_list: Dict[str, set] = {}
        self.removed: List[tuple] = []

    def add_node(self, node):
        if isinstance(node, str):
            node = TaskNode(node)
        if node.node_id in self.nodes:
            raise ValueError(f"Node {node.node_id} already exists in graph")
        self.nodes[node.node_id] = node
        return node

    def get_node(self, node_id):
        return self.nodes[node_id]

    def has_node(self, node_id):
        return node_id in self.nodes

    def get_all_nodes(self):
        return list(self.nodes.values())

    def add_edge(self, edge):
        for end in (edge.source_id, edge.target_id):
            if end not in self.nodes:
                raise ValueError(f"Node {end} not in graph")
        self.edges.append(edge)
        self._adj_list.setdefault(edge.source_id, set()).add(edge.target_id)
        self.nodes[edge.source_id].dependents.add(edge.target_id)
        self.nodes[edge.target_id].dependencies.add(edge.source_id)
        if edge.edge_type in (EdgeType.DEPENDENCY, EdgeType.CONSTRAINT) and self.has_cycle():
            self.edges.pop()
            self._adj_list[edge.source_id].discard(edge.target_id)
            self.nodes[edge.source_id].dependents.discard(edge.target_id)
            self.nodes[edge.target_id].dependencies.discard(edge.source_id)
            raise ValueError(f"Adding edge {edge.source_id} -> {edge.target_id} creates cycle")

    def connect(self, src, dst, edge_type=EdgeType.DEPENDENCY, weight=1.0):
        """Adds missing nodes and the edge (a test convenience)."""
        for n in (src, dst):
            if n not in self.nodes:
                self.add_node(n)
        self.add_edge(TaskEdge(src, dst, edge_type, weight))

    def remove_edge(self, source_id, target_id):
        self.removed.append((source_id, target_id))
        self.edges = [e for e in self.edges if not (e.source_id == source_id and e.target_id == target_id)]
        self._adj_list.get(source_id, set()).discard(target_id)
        if source_id in self.nodes:
            self.nodes[source_id].dependents.discard(target_id)
        if target_id in self.nodes:
            self.nodes[target_id].dependencies.discard(source_id)

    def get_edges_from(self, node_id):
        return [e for e in self.edges if e.source_id == node_id]

    def get_edges_to(self, node_id):
        return [e for e in self.edges if e.target_id == node_id]

    def has_edge(self, source_id, target_id):
        return any(e.source_id == source_id and e.target_id == target_id for e in self.edges)

    def has_cycle(self):
        visited, stack = set(), set()

        def visit(n):
            visited.add(n)
            stack.add(n)
            for m in self._adj_list.get(n, ()):
                if m not in visited:
                    if visit(m):
                        return True
                elif m in stack:
                    return True
            stack.discard(n)
            return False

        return any(visit(n) for n in list(self.nodes) if n not in visited)

    def is_acyclic(self):
        return not self.has_cycle()

    def get_root_nodes(self):
        return [n for n in self.nodes.values() if not n.dependencies]

    def get_leaf_nodes(self):
        return [n for n in self.nodes.values() if not n.dependents]

    def get_stats(self):
        return {
            "graph_id": self.graph_id,
            "node_count": len(self.nodes),
            "edge_count": len(self.edges),
            "root_count": len(self.get_root_nodes()),
            "leaf_count": len(self.get_leaf_nodes()),
            "is_acyclic": self.is_acyclic(),
        }


# =============================================================================================
# FAZA 28: agents, scheduler, state, event bus, agent loop


class AgentBase:
    """``AgentBase``: async lifecycle hooks; ``on_tick`` counts ticks and ``on_error`` errors."""

    name = "abstract_agent"
    priority = 5
    enabled = True

    def __init__(self, name=None, priority=None):
        if name is not None:
            self.name = name
        if priority is not None:
            self.priority = priority
        self.tick_count = 0
        self.error_count = 0
        self.metadata: dict = {"created": datetime.now()}  # not JSON-able, like real metadata can be
        self.calls: List[tuple] = []

    async def on_start(self, context):
        self.calls.append(("on_start", context))

    async def on_event(self, event, context):
        self.calls.append(("on_event", event))

    async def on_tick(self, context):
        self.tick_count += 1

    async def on_error(self, error, context):
        self.error_count += 1

    async def on_shutdown(self, context):
        self.calls.append(("on_shutdown", context))

    def get_stats(self):
        return {
            "name": self.name,
            "priority": self.priority,
            "enabled": self.enabled,
            "tick_count": self.tick_count,
            "error_count": self.error_count,
            "metadata": self.metadata,
        }



class CrashingAgent(AgentBase):
    """Crashes on tick while ``failing``; a restart (``on_start``) clears it, as restarting a
    crashed worker would. Its first tick after the restart comes only with the next pass of
    the agent loop."""

    def __init__(self, name):
        super().__init__(name)
        self.failing = False
        self.restarts = 0

    async def on_tick(self, context):
        if self.failing:
            raise RuntimeError(f"{self.name} crashed")
        self.tick_count += 1

    async def on_start(self, context):
        self.failing = False
        self.restarts += 1

class FailingAgent(AgentBase):
    """An agent whose tick raises before the base class counts it (so only errors grow)."""

    def __init__(self, name="failing", priority=10):
        super().__init__(name, priority)
        self.failing = True

    async def on_tick(self, context):
        if self.failing:
            raise RuntimeError(f"{self.name} cannot tick")
        await super().on_tick(context)


class AgentManager:
    def __init__(self):
        self.agents: Dict[str, AgentBase] = {}
        self._started = False

    def register(self, agent):
        if agent.name in self.agents:
            raise ValueError(f"Agent '{agent.name}' already registered")
        self.agents[agent.name] = agent

    def unregister(self, agent_name):
        self.agents.pop(agent_name, None)

    def get_agent(self, agent_name):
        return self.agents.get(agent_name)

    def list_agents(self, enabled_only=False):
        agents = list(self.agents.values())
        return [a for a in agents if a.enabled] if enabled_only else agents

    def get_agents_by_priority(self, enabled_only=True):
        return sorted(self.list_agents(enabled_only), key=lambda a: a.priority, reverse=True)

    async def start_all(self, context):
        for a in self.get_agents_by_priority(True):
            await a.on_start(context)
        self._started = True

    async def shutdown_all(self, context):
        for a in reversed(self.get_agents_by_priority(False)):
            await a.on_shutdown(context)
        self._started = False

    def get_stats(self):
        agents = self.list_agents()
        enabled = [a for a in agents if a.enabled]
        return {
            "total_agents": len(agents),
            "enabled_agents": len(enabled),
            "disabled_agents": len(agents) - len(enabled),
            "started": self._started,
            "agents": [a.get_stats() for a in agents],
        }


class Scheduler:
    def __init__(self, strategy="priority"):
        self.strategy = strategy
        self._round_robin_index = 0
        self._execution_counts: Dict[str, int] = {}
        self._last_execution_times: Dict[str, float] = {}
        self.resets = 0

    def select_agents(self, agents):
        return [a for a in agents if a.enabled]

    def record_execution(self, agent_name, execution_time):
        self._execution_counts[agent_name] = self._execution_counts.get(agent_name, 0) + 1
        self._last_execution_times[agent_name] = execution_time

    def should_run_agent(self, agent, iteration):
        return agent.enabled

    def get_stats(self):
        return {
            "strategy": self.strategy,
            "round_robin_index": self._round_robin_index,
            "total_executions": sum(self._execution_counts.values()),
            "execution_counts": dict(self._execution_counts),
            "last_execution_times": dict(self._last_execution_times),
        }

    def reset(self):
        self._round_robin_index = 0
        self._execution_counts.clear()
        self._last_execution_times.clear()
        self.resets += 1


class StateContext:
    def __init__(self, name="global"):
        self.name = name
        self._data: Dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            return self._data.get(key, default)

    def set(self, key, value):
        with self._lock:
            self._data[key] = value

    def has(self, key):
        with self._lock:
            return key in self._data

    def delete(self, key):
        with self._lock:
            return self._data.pop(key, None) is not None

    def get_all(self):
        with self._lock:
            return dict(self._data)

    def to_json(self):
        with self._lock:
            return json.dumps(self._data, default=str)

    def from_json(self, text):
        with self._lock:
            self._data = json.loads(text)

    def get_stats(self):
        return {"name": self.name, "keys": len(self._data)}


@dataclass
class Event:
    type: str
    source: str
    data: Any = None
    timestamp: datetime = field(default_factory=datetime.now)
    metadata: Dict[str, Any] = field(default_factory=dict)


class EventBus:
    """FAZA 28 ``EventBus``: ``subscribe(event_type, subscriber_name, callback)``,
    ``publish(event)`` with ONE Event argument, ``emit(event_type, source, data=None,
    metadata=None)``. Synchronous; handler errors are swallowed (as the real bus logs them)."""

    def __init__(self):
        self._subscriptions: Dict[str, List[tuple]] = {}
        self._event_history: List[Event] = []
        self._max_history = 1000

    def subscribe(self, event_type, subscriber_name, callback):
        self._subscriptions.setdefault(event_type, []).append((subscriber_name, callback))

    def unsubscribe(self, event_type, subscriber_name):
        if event_type in self._subscriptions:
            self._subscriptions[event_type] = [(n, cb) for n, cb in self._subscriptions[event_type] if n != subscriber_name]

    def unsubscribe_all(self, subscriber_name):
        for t in list(self._subscriptions):
            self.unsubscribe(t, subscriber_name)

    def publish(self, event):
        self._event_history.append(event)
        if len(self._event_history) > self._max_history:
            self._event_history.pop(0)
        for _, cb in self._subscriptions.get(event.type, []):
            try:
                cb(event)
            except Exception:
                pass

    def emit(self, event_type, source, data=None, metadata=None):
        self.publish(Event(type=event_type, source=source, data=data, metadata=metadata or {}))

    def get_event_history(self, event_type=None, source=None):
        events = self._event_history
        if event_type:
            events = [e for e in events if e.type == event_type]
        if source:
            events = [e for e in events if e.source == source]
        return events

    def clear_history(self):
        self._event_history.clear()

    def get_stats(self):
        return {
            "total_events": len(self._event_history),
            "event_types": len({e.type for e in self._event_history}),
            "subscriptions": {t: len(s) for t, s in self._subscriptions.items()},
            "max_history": self._max_history,
        }


class PublishOnlyBus:
    """A bus with only the reference's ``publish(name, data)``."""

    def __init__(self):
        self.published: List[tuple] = []

    def publish(self, name, data):
        self.published.append((name, data))


class AELController:
    """``AELController``: ``agent_manager``, ``event_bus``, ``scheduler``, ``state_context``,
    ``get_stats()``. ``run_iteration()`` does what one pass of the real main loop does."""

    def __init__(self, agent_manager=None, event_bus=None, scheduler=None, state_context=None, tick_rate=1.0, strategy="priority"):
        self.agent_manager = agent_manager or AgentManager()
        self.event_bus = event_bus or EventBus()
        self.scheduler = scheduler or Scheduler(strategy)
        self.state_context = state_context or StateContext()
        self.tick_rate = tick_rate
        self.strategy = strategy
        self._running = False
        self._iteration = 0
        self._start_time: Optional[datetime] = None

    def begin(self):
        """Marks the loop running without starting a task (the real start() blocks)."""
        self._running = True
        self._start_time = datetime.now()

    async def run_iteration(self, now=None):
        self._iteration += 1
        self.state_context.set("ael_iteration", self._iteration)
        self.state_context.set("ael_last_tick", (now or datetime.now()).isoformat())
        agents = self.scheduler.select_agents(self.agent_manager.get_agents_by_priority(enabled_only=True))
        for agent in agents:
            if not self.scheduler.should_run_agent(agent, self._iteration):
                continue
            try:
                await agent.on_tick(self.state_context)
                self.scheduler.record_execution(agent.name, 0.0)
            except Exception as e:
                await agent.on_error(e, self.state_context)
                self.event_bus.emit("agent_error", "ael_controller",
                                    data={"agent": agent.name, "error": str(e), "iteration": self._iteration})

    async def stop(self):
        self._running = False

    def get_stats(self):
        uptime = (datetime.now() - self._start_time).total_seconds() if self._start_time else 0
        return {
            "running": self._running,
            "iteration": self._iteration,
            "uptime_seconds": uptime,
            "tick_rate": self.tick_rate,
            "strategy": self.strategy,
            "start_time": self._start_time.isoformat() if self._start_time else None,
            "agent_manager": self.agent_manager.get_stats(),
            "event_bus": self.event_bus.get_stats(),
            "scheduler": self.scheduler.get_stats(),
            "state_context": self.state_context.get_stats(),
        }


# =============================================================================================
# FAZA 28.5: meta layer


class AnomalyDetector:
    def __init__(self):
        self.anomalies: List[dict] = []
        self.cleared = 0

    def record(self, agent_name, severity="HIGH", when=None):
        self.anomalies.append({"agent_name": agent_name, "severity": severity, "timestamp": when or datetime.now()})

    def get_recent_anomalies(self, agent_name=None, time_window=300, severity=None):
        cutoff = datetime.now() - timedelta(seconds=time_window)
        out = [a for a in self.anomalies if a["timestamp"] > cutoff]
        if agent_name:
            out = [a for a in out if a["agent_name"] == agent_name]
        return out

    def get_anomaly_summary(self):
        recent = self.get_recent_anomalies(time_window=300)
        return {
            "total_anomalies": len(self.anomalies),
            "recent_anomalies": len(recent),
            "anomalies_by_type": {},
            "anomalies_by_severity": {s: sum(1 for a in recent if a["severity"] == s) for s in ("LOW", "MEDIUM", "HIGH", "CRITICAL")},
            "agents_with_anomalies": len({a["agent_name"] for a in recent}),
        }

    def clear_history(self, agent_name=None):
        self.anomalies.clear()
        self.cleared += 1


class StabilityEngine:
    def __init__(self, history_window=300):
        self.history_window = history_window
        self.stability_reports: List[dict] = []
        self.cleared = 0

    def report(self, severity, issue="oscillation"):
        self.stability_reports.append({"issue_type": issue, "severity": severity, "timestamp": datetime.now()})

    def get_stability_summary(self):
        recent = [r for r in self.stability_reports if (datetime.now() - r["timestamp"]).total_seconds() < self.history_window]
        return {
            "total_issues": len(self.stability_reports),
            "recent_issues": len(recent),
            "issues_by_type": {},
            "avg_severity": sum(r["severity"] for r in recent) / max(1, len(recent)),
            "critical_issues": len([r for r in recent if r["severity"] > 0.8]),
        }

    def clear_history(self):
        self.stability_reports.clear()
        self.cleared += 1


class StrategyAdapter:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1


class MetaEvaluationLayer:
    """``MetaEvaluationLayer``: ``get_stability_summary``, ``get_anomaly_summary``,
    ``get_system_risk`` and the parts a reset touches."""

    def __init__(self):
        self.anomaly_detector = AnomalyDetector()
        self.stability_engine = StabilityEngine()
        self.strategy_adapter = StrategyAdapter()

    def get_stability_summary(self):
        return self.stability_engine.get_stability_summary()

    def get_anomaly_summary(self):
        return self.anomaly_detector.get_anomaly_summary()

    def get_system_risk(self):
        return {"overall_risk": "low", "risk_score": 0.0, "contributing_factors": []}


# =============================================================================================
# FAZA 29: governance


class TakeoverState(enum.Enum):
    NORMAL = "normal"
    WARNING = "warning"
    TAKEOVER = "takeover"
    SAFE_MODE = "safe_mode"
    RECOVERY = "recovery"


class TakeoverManager:
    def __init__(self, can_recover=True):
        self.state = TakeoverState.NORMAL
        self.takeover_active = False
        self.safe_mode_active = False
        self.takeover_score = 0.0
        self.can_recover = can_recover
        self.recoveries = 0

    def get_state(self):
        return self.state

    def get_takeover_score(self):
        return self.takeover_score

    def is_takeover_active(self):
        return self.takeover_active

    def initiate(self, score=0.9):
        """What the real manager does when the takeover score crosses its threshold."""
        self.state = TakeoverState.TAKEOVER
        self.takeover_active = True
        self.takeover_score = score

    def manual_takeover(self, reason="Manual takeover"):
        # Like the real one: the flag is set, the state is not changed.
        self.takeover_active = True

    def _can_recover(self):
        return self.can_recover

    def force_recovery(self):
        self.state = TakeoverState.NORMAL
        self.takeover_active = False
        self.recoveries += 1

    def get_status(self):
        return {"state": self.state.value, "takeover_score": round(self.takeover_score, 3),
                "takeover_active": self.takeover_active, "safe_mode_active": self.safe_mode_active}

    def get_statistics(self):
        return {"takeovers": int(self.takeover_active), "recoveries": self.recoveries}


class OverrideSystem:
    def __init__(self):
        self.override_stack: List[dict] = []
        self.fallbacks: List[float] = []
        self.stats = {"total_overrides": 0}

    def push_override(self, override_type="user", reason="", priority=5, duration_seconds=None):
        self.override_stack.append({"type": override_type, "reason": reason, "priority": priority})
        self.stats["total_overrides"] += 1
        return f"ovr_{len(self.override_stack)}"

    def pop_override(self):
        return self.override_stack.pop() if self.override_stack else None

    def clear_stack(self):
        n = len(self.override_stack)
        self.override_stack.clear()
        return n

    def is_override_active(self):
        return bool(self.override_stack)

    def get_stack_size(self):
        return len(self.override_stack)

    def instability_fallback(self, instability_score):
        self.fallbacks.append(instability_score)
        return self.push_override("system", f"instability {instability_score}")

    def get_statistics(self):
        return {"total_overrides": self.stats["total_overrides"], "active_overrides": self.get_stack_size()}


class FeedbackLoop:
    def __init__(self):
        self.error_history: List[float] = []

    def update(self, error):
        self.error_history.append(error)

    def get_stability_score(self):
        if len(self.error_history) < 2:
            return 0.5
        mean_abs = sum(abs(e) for e in self.error_history) / len(self.error_history)
        return max(0.0, min(1.0, 1.0 - min(mean_abs * 2, 1.0)))

    def is_stable(self, threshold=0.7):
        return self.get_stability_score() >= threshold

    def reset(self):
        self.error_history.clear()


class RuleEngine:
    def __init__(self):
        self.stats = {"rules_evaluated": 0, "allow_count": 0, "block_count": 0, "override_count": 0, "escalate_count": 0}

    def block(self, n=1):
        """n evaluations that ended in BLOCK."""
        self.stats["rules_evaluated"] += n
        self.stats["block_count"] += n

    def get_statistics(self):
        s = self.stats
        return {**s, "total_rules": 12, "allow_rate": s["allow_count"] / max(s["rules_evaluated"], 1),
                "block_rate": s["block_count"] / max(s["rules_evaluated"], 1)}


class GovernanceController:
    """``GovernanceController``: ``get_risk()`` (``total_risk`` 0-100), ``get_status()``,
    ``get_takeover_state()`` (the state's value), ``get_statistics()`` (``rule_engine`` with
    ``block_count``), and its ``override_system``, ``takeover_manager``, ``feedback_loop``."""

    def __init__(self, event_bus=None):
        self.event_bus = event_bus
        self.rule_engine = RuleEngine()
        self.override_system = OverrideSystem()
        self.takeover_manager = TakeoverManager()
        self.feedback_loop = FeedbackLoop()
        self.total_risk = 12.5
        self.running = False
        self.stats = {"evaluations": 0}

    def get_status(self):
        return {
            "running": self.running,
            "override_active": self.override_system.is_override_active(),
            "takeover_state": self.takeover_manager.get_state().value,
            "takeover_score": round(self.takeover_manager.get_takeover_score(), 3),
            "current_tick_hz": 1.0,
            "feedback_stable": self.feedback_loop.is_stable(),
            "integrations": {},
            "timestamp": datetime.now().isoformat(),
        }

    def get_risk(self):
        return {
            "system_risk": round(self.total_risk, 2),
            "agent_risk": 0.0,
            "graph_risk": 0.0,
            "total_risk": round(self.total_risk, 2),
            "critical_factors": ["cpu_usage"] if self.total_risk > 70 else [],
            "factor_count": 1,
            "timestamp": datetime.now().isoformat(),
        }

    def get_takeover_state(self):
        return self.takeover_manager.get_state().value

    def get_statistics(self):
        return {
            "controller": self.stats,
            "rule_engine": self.rule_engine.get_statistics(),
            "override_system": self.override_system.get_statistics(),
            "takeover_manager": self.takeover_manager.get_statistics(),
            "feedback_loop": {"samples": len(self.feedback_loop.error_history)},
        }

    def get_override_system(self):
        return self.override_system

    def get_takeover_manager(self):
        return self.takeover_manager

    def get_feedback_loop(self):
        return self.feedback_loop


# =============================================================================================
# Layer metrics


# Per-layer metrics (the detector's keyword arguments) on which it raises no fault.
HEALTHY = {
    "faza25_metrics": {"error_rate": 0.01, "queue_size": 5},
    "faza27_metrics": {"cycle_count": 0, "bottleneck_count": 1},
    "faza28_metrics": {"agent_failure_rate": 0.01, "scheduler_stuck": False},
    "faza28_5_metrics": {"stability_score": 0.95, "anomaly_rate": 0.01},
    "faza29_metrics": {"violation_count": 0, "takeover_active": False},
}

# All four readings of each of the health engine's six components.
HEALTH6 = {
    "faza25_metrics": {"queue_size": 60, "task_success_rate": 0.97, "scheduler_efficiency": 0.9, "cpu_usage": 0.55},
    "faza27_metrics": {"graph_complexity": 120, "cycle_count": 1, "bottleneck_detected": False,
                       "optimization_score": 0.85},
    "faza28_metrics": {"agent_failure_rate": 0.05, "cooperation_score": 0.9, "agent_performance": 0.92,
                       "communication_health": 0.97},
    "faza28_5_metrics": {"stability_score": 0.88, "policy_effectiveness": 0.9, "anomaly_count": 1,
                         "feedback_health": 0.93},
    "faza29_metrics": {"governance_violations": 1, "takeover_active": False, "override_count": 2, "risk_score": 20},
    "faza30_metrics": {"active_faults": 2, "repair_success_rate": 0.8, "critical_faults": 0,
                       "failed_healing_cycles": 1},
}

# Per-layer metrics (the detector's keyword arguments) on which it raises exactly eight faults.
FAULTS8 = {
    "faza25_metrics": {"error_rate": 0.6, "queue_size": 500},
    "faza27_metrics": {"cycle_count": 2, "bottleneck_count": 2},
    "faza28_metrics": {"agent_failure_rate": 0.5, "scheduler_stuck": True},
    "faza28_5_metrics": {"stability_score": 0.2, "anomaly_rate": 0.9},
    "faza29_metrics": {"violation_count": 3, "takeover_active": False},
}


# =============================================================================================
# Minimal doubles: just the surface a repair engine acts on, built straight from plain data
# (the real-shaped classes above refuse a DEPENDENCY edge that closes a cycle, for instance).


def executor(task):
    """A synchronous task executor that does nothing."""
    return None


class EdgeListGraph:
    """A FAZA 27 graph built from ``(source, target, edge_type, weight)`` tuples, any cycle
    allowed: ``nodes``, ``edges``, ``get_edges_from``, ``remove_edge`` (recorded in
    ``removed``), ``has_cycle``, and ``capture``/``restore`` to register as a snapshot state
    provider."""

    def __init__(self, edges):
        self.edges = [TaskEdge(*e) for e in edges]
        self.nodes = {}
        for e in self.edges:
            self.nodes.setdefault(e.source_id, object())
            self.nodes.setdefault(e.target_id, object())
        self.removed = []

    def get_edges_from(self, node_id):
        return [e for e in self.edges if e.source_id == node_id]

    def remove_edge(self, source_id, target_id):
        self.removed.append((source_id, target_id))
        self.edges = [e for e in self.edges if not (e.source_id == source_id and e.target_id == target_id)]

    def has_cycle(self):
        adj = {}
        for e in self.edges:
            adj.setdefault(e.source_id, []).append(e.target_id)
        done, path = set(), set()

        def visit(n):
            path.add(n)
            for m in adj.get(n, []):
                if m in path or (m not in done and visit(m)):
                    return True
            path.discard(n)
            done.add(n)
            return False

        return any(visit(n) for n in list(adj) if n not in done)

    def capture(self):
        return [[e.source_id, e.target_id, e.edge_type.value, e.weight] for e in self.edges]

    def restore(self, section):
        self.edges = [TaskEdge(s, d, EdgeType(t), w) for s, d, t, w in section]


class RecordingAgent:
    """An agent whose sync lifecycle hooks append ``(hook, name, context)`` to a shared log;
    it starts ``crashed`` and ``on_start`` clears that."""

    def __init__(self, name, log):
        self.name, self.enabled, self.log, self.crashed = name, True, log, True

    def on_shutdown(self, context):
        self.log.append(("on_shutdown", self.name, context))

    def on_start(self, context):
        self.log.append(("on_start", self.name, context))
        self.crashed = False


class NamedAgentManager:
    """FAZA 28 ``AgentManager`` surface: ``get_agent(name)``, over RecordingAgents sharing ``log``."""

    def __init__(self, *names):
        self.log = []
        self.agents = {n: RecordingAgent(n, self.log) for n in names}

    def get_agent(self, name):
        return self.agents.get(name)

    def failure_rate(self):
        return sum(a.crashed for a in self.agents.values()) / max(1, len(self.agents))


class _QueuedCount:
    def __init__(self, orch):
        self.orch = orch

    def size(self):
        return sum(1 for t in self.orch.tasks.values() if t.status == TaskStatus.QUEUED)


class TaskDictOrchestrator:
    """FAZA 25 ``OrchestratorManager`` surface: ``tasks``, ``submit_task`` (ids ``retry-1``,
    ``retry-2``..., the arguments kept in ``submitted``), ``cancel_task`` (queued tasks only,
    kept in ``cancelled``), ``task_queue.size()``. Tasks are added with the id and status
    a test wants."""

    def __init__(self):
        self.tasks = {}
        self.submitted = []
        self.cancelled = []
        self.task_queue = _QueuedCount(self)

    def add(self, task_id, **kw):
        t = Task(id=task_id, **kw)
        self.tasks[task_id] = t
        return t

    def submit_task(self, name, executor, priority=5, task_type="generic", context=None):
        new_id = f"retry-{len(self.submitted) + 1}"
        self.submitted.append(dict(name=name, executor=executor, priority=priority, task_type=task_type, context=context))
        self.add(new_id, name=name, executor=executor, priority=priority, task_type=task_type, context=context or {})
        return new_id

    def cancel_task(self, task_id):
        t = self.tasks.get(task_id)
        if t is None or t.status != TaskStatus.QUEUED:
            return False
        t.status = TaskStatus.DONE
        self.cancelled.append(task_id)
        return True

    def error_rate(self):
        """Failed tasks that were not resubmitted, over all tasks."""
        retried = {s["name"] for s in self.submitted}
        failed = [t for t in self.tasks.values() if t.status == TaskStatus.ERROR and t.name not in retried]
        return len(failed) / max(1, len(self.tasks))


# =============================================================================================
# Objects with the reference integration layer's probe names


class _ProbeOrchestrator:
    def __init__(self, faulty):
        self.faulty = faulty

    def get_queue_size(self):
        return 480 if self.faulty else 4

    def get_queue_metrics(self):
        return {"error_rate": 0.62 if self.faulty else 0.01}

    def get_scheduler_stats(self):
        return {"efficiency": 0.93, "success_rate": 0.55 if self.faulty else 0.99}

    def get_resource_usage(self):
        return {"cpu": 0.41, "memory": 0.37}


class _ProbeGraph:
    def __init__(self, faulty):
        self.faulty = faulty

    def get_complexity(self):
        return 140 if self.faulty else 20

    def detect_cycles(self):
        return [["t1", "t2", "t1"]] if self.faulty else []

    def get_stats(self):
        return {"bottleneck_count": 8 if self.faulty else 0}


class _ProbeOptimizer:
    def __init__(self, faulty):
        self.faulty = faulty

    def get_optimization_score(self):
        return 0.8

    def detect_bottlenecks(self):
        return ["t3"] if self.faulty else []


class _ProbeAgentLoop:
    def __init__(self, faulty):
        self.faulty = faulty

    def get_agent_stats(self):
        return {"failure_rate": 0.45 if self.faulty else 0.01, "performance": 0.9, "cooperation_score": 0.8}

    def get_communication_health(self):
        return 0.95

    def get_active_agents(self):
        return ["a1", "a2", "a3"]


class _ProbeMeta:
    def __init__(self, faulty):
        self.faulty = faulty

    def get_stability_score(self):
        return 0.3 if self.faulty else 0.95

    def get_policy_effectiveness(self):
        return 0.9

    def get_anomaly_count(self):
        return 2

    def get_feedback_health(self):
        return 0.9


class _ProbeGovernance:
    def __init__(self, faulty, state=None):
        self.faulty = faulty
        self.state = state

    def get_risk(self):
        return {"overall_score": 35}

    def get_status(self):
        return {"violations": 0, "override_count": 1}

    def get_takeover_state(self):
        if self.state is not None:
            return self.state
        return "takeover" if self.faulty else "normal"


def probe_layers(faulty):
    """Constructor keywords for objects that only have the reference's probe methods."""
    return {
        "faza25_orchestrator": _ProbeOrchestrator(faulty),
        "faza27_task_graph": _ProbeGraph(faulty),
        "faza27_5_optimizer": _ProbeOptimizer(faulty),
        "faza28_agent_loop": _ProbeAgentLoop(faulty),
        "faza28_5_meta_layer": _ProbeMeta(faulty),
        "faza29_governance": _ProbeGovernance(faulty),
    }


def run(coro):
    """Runs a coroutine to completion (tests have no asyncio plugin)."""
    return asyncio.run(coro)
