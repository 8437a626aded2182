"""Experiments — does distillation help, and by more than the seed-to-seed noise?

Storyboard: pick a preset (its recipe in one sentence) → seeds, share of
labels, a class to leave out → Run → live progress → teacher, distilled student
and from-scratch baseline as bars with the seed spread as error bars, the gain
and the share of the gap recovered in numbers, per-class accuracy when a class
was left out → distillation methods compared on the same preset: each one's
gain over scratch with its interval as bars, and a table against plain KD →
a sweep over T and alpha, drawn as a heatmap of the gain → a sweep
run as an Optuna study by workers on any machine: its trials, read live from the
study's database, with the workers seen.
"""
import pandas as pd
import streamlit as st

from kdcore import comparison, experiments, figures, params, presets, recipes, studies, tasks
from kdcore.metric import ACCURACY
from kdcore.results import Verdict
from pages import job_panel, state

st.title("Experiments")
st.caption("One distillation run proves little: two seeds of the same student differ by about as much as "
           "most demos' \"gain\". Here every seed trains the distilled student **and** the same student from "
           "scratch (same initial weights, same batches), and the result is the mean ± std over seeds. "
           "The teacher is trained once per recipe and reused.")


def _recipe(name: str) -> str:
    """A preset in one line, its teacher and student described by their task."""
    spec, (teacher, d) = presets.get(name), presets.configs(name)
    task = tasks.get(spec.get("task"))
    extras = [f"labels for {d.labels_fraction:.1%} of the examples"] if d.labels_fraction < 1 else []
    extras += [f"no {spec['omit_class']} in the transfer set"] if spec.get("omit_class") is not None else []
    extras += [f"the teacher reads {spec['teacher_dataset']}"] if spec.get("teacher_dataset") else []
    return (f"{spec['dataset']} · teacher {task.describe_teacher(teacher)} · student "
            f"{task.describe_student(d.student)}, {d.epochs} epochs, T = {d.temperature:g}, alpha = {d.alpha:g}"
            + "".join(f" · {e}" for e in extras))


def _pm(spread: dict) -> str:
    """A share's mean ± std over seeds, in percent."""
    return "n/a" if spread.get("mean") is None else f"{100 * spread['mean']:.1f} ± {100 * spread['std']:.1f} %"


task = state.task()
METRIC = task.metric
CLASSIFIER = METRIC == ACCURACY  # a class left out of the transfer set is reported in accuracy


def live(job, done_label: str, total_label: str, noun: str) -> None:
    """Progress of a running experiment or sweep, polled every second; the whole page reruns when it ends.

    Deliberately light: a bar, a count and a table of the seeds finished so
    far. An experiment is a dozen trainings, whose curves drawn together would
    be unreadable; the Runs page shows them per series afterwards.
    """
    from kdcore.results import ACTIVE

    running = job.status in ACTIVE

    @st.fragment(run_every=1.0 if running else None)
    def panel():
        snap = job.progress.snapshot(curves=False)
        if running and snap["status"] not in ACTIVE:
            st.rerun()
        results = snap["results"]
        if snap["status"] == "queued":
            st.info(f"{snap['title']} is queued: it starts when the run before it ends.", icon="⏳")
        elif snap["status"] == "running":
            where = snap["phase"] or "starting"
            if snap["epochs"]:
                where += f", epoch {min(snap['epoch'] + 1, snap['epochs'])} of {snap['epochs']}"
            count = (f" · {noun} finished: {results[done_label]} of {results[total_label]}"
                     if results.get(total_label) else "")
            st.progress(snap["fraction"], text=f"{snap['title']} — {where}{count}")
            if st.button("Stop", key=f"stop_{job.kind}"):
                job.stop()
                st.caption("Stopping after the current batch…")
            finished = results.get("finished_seeds") or results.get("finished_runs")
            if finished:
                st.dataframe(pd.DataFrame(finished).drop(columns="omit", errors="ignore"), hide_index=True)
        elif snap["status"] == "finished":
            st.success(f"{snap['title']} — finished in {(snap['ended'] or 0) - (snap['started'] or 0):.0f} s.",
                       icon="✅")
        else:
            st.warning(f"{snap['title']} — {snap['status']}: {snap['reason']}", icon="⚠️")

    panel()


# --- one experiment --------------------------------------------------------------------------------
st.subheader("Run an experiment")
choices = presets.names(task.name)
if not choices:
    st.info(f"{task.title} has no preset yet: distil on the Distill page, with its baseline beside it.",
            icon=":material/info:")
    st.stop()
first = "default" if "default" in choices else choices[0]
if st.session_state.get("kept", {}).get("experiments.preset", first) not in choices:  # one of another task's
    st.session_state["kept"]["experiments.preset"] = first
    st.session_state.pop("experiments.preset", None)
name = state.kept(st.selectbox, "Preset", "experiments.preset", first, options=choices)
spec = presets.get(name)
st.markdown(f"{spec['description']}  \n`{_recipe(name)}`")
left, middle, right = st.columns(3)
seeds = int(state.kept(left.number_input, "Seeds", f"experiments.{name}.seeds", 3, min_value=1, max_value=10,
                         help="The experiment is repeated with seeds 0 … N−1; the spread is their std."))
fraction, omit = 1.0, "none"
if "labels_fraction" in task.distill_params():
    fraction = state.kept(middle.slider, "Share of images with labels", f"experiments.{name}.labels",
                          float(spec["distill"].get("labels_fraction", 1.0)), min_value=0.05, max_value=1.0,
                          step=0.025, help="The student learns the unlabelled rest from the teacher alone; the "
                                           "baseline learns from the labelled part only.")
if CLASSIFIER:
    omit_options = ["none", *range(len(state.current_dataset().classes))]
    omit = state.kept(right.selectbox, "Leave out of the transfer set", f"experiments.{name}.omit",
                      "none" if spec.get("omit_class") is None else spec["omit_class"], options=omit_options,
                      help="Hinton et al. (2015): a student that never saw this class learns it from the "
                           "teacher's soft targets on the other digits.")
if spec["dataset"] not in task.quick_datasets:
    st.info(f"{spec['dataset']} is a full dataset: on two CPU cores this takes tens of minutes.", icon="⏱️")

job = job_panel.current_job("experiment")
busy = job is not None and job.status.active
if st.button("Run experiment", type="primary", disabled=busy):
    job_panel.start_job("experiment", lambda: experiments.start_experiment(
        name, seeds, float(fraction) if fraction != 1.0 or CLASSIFIER else None, None if omit == "none" else int(omit)))


if job is not None:
    live(job, "seeds_done", "seeds_total", "seeds")
    result = job.result or {}
    if job.status == "finished" and result.get(f"student_{METRIC.name}"):
        bars, numbers = st.columns([3, 2])
        bars.plotly_chart(figures.experiment_bars(result), key="experiment_bars")
        with numbers:
            st.metric("Gain of distillation" if METRIC.higher_is_better else f"Change in {METRIC.name}",
                      METRIC.format_spread(result["gain"], change=True),
                      help=f"Distilled minus baseline test {METRIC.name}, per seed"
                           + ("" if METRIC.higher_is_better else " (negative: distillation helped)")
                           + "; mean ± std over seeds.")
            st.metric("Gap recovered", _pm(result["gap_recovered"]),
                      help="(student − baseline) / (teacher − baseline): 100 % would match the teacher."
                      + (f" For {METRIC.name} the gap is measured in log-{METRIC.name}." if METRIC.log_space else ""))
            verdict = Verdict.of_record(result)
            if verdict is not None:
                outcome = {"helped": "Distillation helped", "hurt": "Distillation hurt",
                           "tie": "A tie"}.get(verdict.outcome, "No verdict")
                st.markdown(f"**{outcome}:** {verdict.gain_text(METRIC)}.")
        st.dataframe(pd.DataFrame(result["runs"]).drop(columns="omit", errors="ignore"), hide_index=True)
        if "omit" in result:
            k, omit_stats = result["omit_class"], result["omit"]
            st.markdown(f"**Class {k}** was never in the transfer set. The distilled student recognises "
                        f"{_pm(omit_stats['student_class'])} of the test {k}s; raising its bias for {k} by "
                        f"{omit_stats['bias']['mean']:+.2f} (chosen so that it predicts {k} on the training "
                        f"images as often as {k}s occur there; the test set plays no part) brings that to "
                        f"{_pm(omit_stats['student_class_after_bias'])}. The baseline, with no teacher, "
                        f"gets {_pm(omit_stats['baseline_class'])}.")
            st.dataframe(pd.DataFrame(omit_stats["per_class"]).rename_axis("class"))

# --- methods compared ------------------------------------------------------------------------------
st.subheader("Compare distillation methods")
st.caption("Every method distils this preset's student from the same teacher over the same seeds, against one "
           "student from scratch per seed; plain KD always runs, as the reference. Each method's one "
           "hyperparameter is chosen on seed 0's valid split from three values; the test split only reports. "
           "A method that cannot run on this student (attention transfer on an MLP) says why in the table.")
left, right = st.columns([3, 1])
chosen = state.kept(left.multiselect, "Methods", "experiments.methods", ["kd", "fitnets", "dkd"],
                    options=list(recipes.METHODS), format_func=lambda n: f"{n}: {recipes.method(n).description}")
method_seeds = int(state.kept(right.number_input, "Seeds", "experiments.methods.seeds", 3, min_value=1,
                              max_value=10, help="Seeds 0 … N−1; the interval is a t-interval over them."))
methods_job = job_panel.current_job("methods")
methods_busy = methods_job is not None and methods_job.status.active
if st.button("Compare methods", disabled=methods_busy or not chosen):
    job_panel.start_job("methods", lambda: comparison.start_methods(name, chosen, method_seeds))

if methods_job is not None:
    live(methods_job, "runs_done", "runs_total", "trainings")
    compared = methods_job.result or {}
    if methods_job.status == "finished" and compared.get("table"):
        st.plotly_chart(figures.methods_bars(compared), key="methods_bars")
        st.dataframe(pd.DataFrame(comparison.table_rows(compared)), hide_index=True)

# --- sweep ----------------------------------------------------------------------------------------
st.subheader("Sweep temperature and alpha")
st.caption("Each cell is a distilled student (mean over seeds) minus the same student from scratch; the "
           "baseline does not depend on T or alpha, so it is trained once per width and seed.")
a, b, c, d = st.columns(4)
temperatures = state.kept(a.multiselect, "Temperatures", "experiments.sweep.T", [1.0, 2.0, 4.0, 8.0],
                            options=[1.0, 2.0, 4.0, 8.0, 16.0, 20.0])
alphas = state.kept(b.multiselect, "Alphas", "experiments.sweep.alpha", [0.5, 0.9],
                      options=[0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
widths = state.kept(c.multiselect, f"Student widths ({params.get(task.width_setting, task.name).label.lower()})",
                    "experiments.sweep.widths", [], options=[16, 32, 64, 128, 256],
                    help="Empty: the preset's own student.")
sweep_seeds = int(state.kept(d.number_input, "Seeds per cell", "experiments.sweep.seeds", 1,
                               min_value=1, max_value=5))
sweep_job = job_panel.current_job("sweep")
sweep_busy = sweep_job is not None and sweep_job.status.active
if st.button("Run sweep", disabled=sweep_busy or not temperatures or not alphas):
    job_panel.start_job("sweep", lambda: experiments.start_sweep(name, sorted(temperatures), sorted(alphas),
                                                               sweep_seeds, sorted(widths) or None))

if sweep_job is not None:
    live(sweep_job, "cells_done", "cells_total", "trainings")
    cells = (sweep_job.result or {}).get("cells")
    if sweep_job.status == "finished" and cells:
        frame = pd.DataFrame(cells)
        shown, width = st.columns(2)
        value = shown.radio("Show", ["gain", "student"], horizontal=True, key="experiments.sweep.value",
                            format_func={"gain": "gain over the baseline", "student": f"student {METRIC.name}"}.get)
        units = width.selectbox("Student width", sorted(frame["units"].unique()), key="experiments.sweep.units")
        st.plotly_chart(figures.sweep_heatmap(frame, value, int(units)), key="sweep_heatmap")
        best = sweep_job.result.get("best")
        if best:
            st.caption(f"Best cell, picked on the valid split: width {best['units']}, T={best['temperature']:g}, "
                       f"α={best['alpha']:g}; valid gain {METRIC.format_change(best['valid_gain'])}, "
                       f"test gain {METRIC.format_change(best['gain'])} (the test split only reports it).")
        st.dataframe(frame, hide_index=True)

# --- sweeps as Optuna studies ---------------------------------------------------------------------
st.subheader("Sweeps across machines (Optuna studies)")
st.caption("`python -m kdcore sweep --study NAME ...` creates the grid as an Optuna study in a database; "
           "`python -m kdcore worker --study NAME` on any machine with the data and the teacher joins it. "
           "The trials below are read from that database, live.")
other = st.text_input("Study database", key="experiments.study.storage", type="password",
                      placeholder="empty: the default database",
                      help="sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB. Empty: $KDSTUDIO_STORAGE, "
                           "else studies.db in the data folder. The page never shows a password.")
study_url = other.strip() or None
st.caption(f"Database: `{studies.masked(study_url or studies.default_storage())}`")
try:
    study_list = studies.list_studies(study_url)
except studies.StudyError as exc:
    st.warning(str(exc), icon="⚠️")
    study_list = None


STUDY_EVERY_S = 2.0  # a study's table is read from its database: every 2 s, not at the live panels' 1 s


def study_panel(name: str, url: str | None) -> None:
    """The study's trials, polled every two seconds while any is waiting or running."""
    try:
        first = studies.study_view(name, url)
    except studies.StudyError as exc:
        st.warning(str(exc), icon="⚠️")
        return

    @st.fragment(run_every=STUDY_EVERY_S if not first["done"] else None)
    def panel():
        view = studies.study_view(name, url)
        if not first["done"] and view["done"]:
            st.rerun()
        counts = view["states"]
        search = view["mode"] == "search"
        a, b, c, d, e, *f = st.columns(6 if search else 5)
        a.metric("Complete", counts["complete"])
        b.metric("Running", counts["running"])
        c.metric("Waiting", counts["waiting"])
        d.metric("Failed", counts["fail"], help="A trial whose worker died is failed by its missing "
                                                "heartbeat and queued again (the retry shows 'retry of').")
        e.metric("Workers seen", len(view["workers_seen"]),
                 help="Distinct worker processes (host:pid) that ran a trial of this study; "
                      f"running now: {', '.join(view['workers_active']) or 'none'}.")
        if search:
            f[0].metric("Pruned", counts["pruned"], help="Trials the median pruner stopped after an epoch, "
                                                         "their gain so far below the other trials' median.")
            best = view["best"]
            st.caption(f"A search of {view['spec']['search']['trials']} trials for the best gain over the baseline "
                       "on the valid split; "
                       + (f"best so far: {studies.best_text(best)}." if best else "none complete yet."))
            if view["confirmation"]:
                st.caption(f"The best recipe {studies.confirmation_text(view['confirmation'])}.")
        if view["cells"]:
            frame = pd.DataFrame(view["cells"])
            units = sorted(frame["units"].unique())
            shown = units[0] if len(units) == 1 else st.selectbox("Student width", units, key="experiments.study.units")
            st.plotly_chart(figures.sweep_heatmap(frame, "gain", int(shown)), key="study_heatmap")
        st.dataframe(pd.DataFrame(view["trials"]), hide_index=True, key="study_trials")

    panel()


if study_list == []:
    st.info("No study in this database yet: create one with `python -m kdcore sweep --study NAME "
            "--temperatures 2,4 --alphas 0.5,0.9`.", icon="ℹ️")
elif study_list:
    chosen = st.selectbox("Study", study_list, index=len(study_list) - 1, key="experiments.study.name")
    study_panel(chosen, study_url)
