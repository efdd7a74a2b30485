"""The suite as an Inspect AI task: a solver that plays each call through Pete, one scorer per check.

Inspect (inspect-ai) brings the sample loop, the `.eval` logs, `inspect view` and its model
graders; Pete brings what is judged. The `pete/<alias>` model API answers through Pete's own
core (`Core.complete`), so a judge can be any model Pete's registry serves, on any provider.
The solver ignores Inspect's `generate` and plays the case through the VAPI face (`EvalStack`),
storing the `CallRecord` in the sample's metadata; each deterministic check is its own scorer
(value 1 or 0, "not applicable" in metadata for cases that do not list it), and the optional
rubric is Inspect's `model_graded_qa` with the judge the user chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspect_ai import Task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import (
    ChatMessage,
    ChatMessageAssistant,
    ChatMessageUser,
    GenerateConfig,
    Model,
    ModelAPI,
    ModelOutput,
    get_model,
    modelapi,
)
from inspect_ai.scorer import SampleScore as InspectSampleScore
from inspect_ai.scorer import Score, Scorer, Target, metric, model_graded_qa, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver
from inspect_ai.tool import ToolChoice, ToolInfo

from pete_mcp.contract import ChatOptions, Message
from pete_mcp.gateway import ChatTurn, Core

from .checks import CallRecord, CheckContext, run_check
from .player import EvalStack
from .suite import CHECK_PARAMS, Case, CheckSpec, Suite

__all__ = ["RUBRIC", "PeteModelAPI", "pete_model", "tenant_call_task"]

RUBRIC = "rubric"
_CALL_KEY = "pete_call"


class PeteModelAPI(ModelAPI):
    """Inspect's view of a Pete model alias: every generate is one `Core.complete` turn."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 (Inspect's own signature)
        *,
        core: Core | None = None,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        if core is None:
            raise ValueError("the pete model API needs core=<a running Pete core> in model_args")
        self.core = core

    async def generate(
        self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice, config: GenerateConfig
    ) -> ModelOutput:
        messages = [Message(role=m.role, content=m.text) for m in input if m.role in ("system", "user", "assistant")]
        options = ChatOptions(max_tokens=config.max_tokens or 256, temperature=config.temperature or 0.0, seed=0)
        reply = await self.core.complete(ChatTurn(messages, model=self.model_name, options=options, source="eval"))
        return ModelOutput.from_content(self.model_name, reply.text)


@modelapi(name="pete")
def _pete_api() -> type[ModelAPI]:
    return PeteModelAPI


def pete_model(alias: str, core: Core) -> Model:
    """`pete/<alias>` answered by `core` (the judge, or the model under test in Inspect's log)."""
    return get_model(f"pete/{alias}", memoize=False, core=core)


@metric
def pass_rate() -> Any:
    """Share of passing samples among those the check applies to (NaN when none)."""

    def compute(scores: list[InspectSampleScore]) -> float:
        applicable = [s.score for s in scores if (s.score.metadata or {}).get("applicable", True)]
        if not applicable:
            return float("nan")
        return sum(float(s.as_float()) for s in applicable) / len(applicable)

    return compute


def _check_scorer(name: str, ctx: CheckContext) -> Scorer:
    @scorer(metrics=[pass_rate()], name=name)
    def check() -> Scorer:
        async def score(state: TaskState, target: Target) -> Score:
            specs = [CheckSpec.model_validate(c) for c in state.metadata["checks"] if c["name"] == name]
            if not specs:
                return Score(value=0.0, metadata={"applicable": False})
            record = CallRecord.from_dict(state.metadata[_CALL_KEY])
            results = [run_check(spec, record, ctx) for spec in specs]
            passed = all(r.passed for r in results)
            return Score(
                value=1.0 if passed else 0.0,
                answer=record.spoken[-1] if record.spoken else "",
                explanation="; ".join(r.detail for r in results),
                metadata={"applicable": True},
            )

        return score

    return check()


def _rubric_scorer(judge: Model) -> Scorer:
    graded = model_graded_qa(model=judge, partial_credit=False)

    @scorer(metrics=[pass_rate()], name=RUBRIC)
    def rubric() -> Scorer:
        async def score(state: TaskState, target: Target) -> Score:
            if not target.text:
                return Score(value=0.0, metadata={"applicable": False})
            result = await graded(state, target)
            assert result is not None
            return Score(
                value=float(result.as_float()),
                answer=result.answer,
                explanation=result.explanation,
                metadata={"applicable": True},
            )

        return score

    return rubric()


@solver
def play_call(stack: EvalStack, run_id: str) -> Solver:
    """Play the sample's case through Pete's VAPI face; the transcript becomes the sample's messages."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        case = Case.model_validate(state.metadata["case"])
        record = await stack.play(case, call_id=f"eval-{run_id}-{case.id}")
        state.metadata[_CALL_KEY] = record.as_dict()
        state.messages = []
        for turn in record.turns:
            state.messages.append(ChatMessageUser(content=turn.caller))
            state.messages.append(
                ChatMessageAssistant(content=turn.said or "(transferred)" if turn.tool_calls else turn.said)
            )
        state.output = ModelOutput.from_content(stack.alias, record.transcript())
        return state

    return solve


def _sample(case: Case, suite: Suite) -> Sample:
    return Sample(
        id=case.id,
        input=case.turns[0],
        target=case.rubric or "",
        metadata={
            "case": case.model_dump(),
            "category": case.category,
            "file": suite.files.get(case.id, ""),
            "checks": [c.model_dump() for c in case.checks],
        },
    )


def tenant_call_task(
    suite: Suite,
    cases: Sequence[Case],
    stack: EvalStack,
    *,
    run_id: str,
    fixed_phrases: Sequence[str],
    judge: Model | None = None,
) -> Task:
    """One Inspect task: `cases` of `suite` played through `stack`, scored by every check they use."""
    ctx = CheckContext(tenants=suite.tenants, fixed_phrases=fixed_phrases)
    used = sorted({c.name for case in cases for c in case.checks})
    scorers = [_check_scorer(name, ctx) for name in used if name in CHECK_PARAMS]
    if judge is not None and any(case.rubric for case in cases):
        scorers.append(_rubric_scorer(judge))
    return Task(
        dataset=MemoryDataset([_sample(c, suite) for c in cases], name=suite.suite),
        solver=play_call(stack, run_id),
        scorer=scorers,
        name=suite.suite,
        version=suite.version,
        metadata={"suite": suite.suite, "suite_version": suite.version, "source": suite.source},
    )
