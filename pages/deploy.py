"""Deploy — is the student small and fast enough to ship, and what did it cost against the teacher?

Storyboard: the answer in one sentence → every saved model and LiteRT export
of the sidebar's dataset on one chart (size across, accuracy up, marker size
= latency, the Pareto front dashed) → export a model (quantization; it runs
in the background, queued behind any training so that its timings are not
taken on a busy CPU) → the exports' figures, and a download button.
All the work is in :mod:`kdcore.export`.
"""
import pandas as pd
import streamlit as st

from kdcore import export, figures, storage, tasks
from kdcore.jobs import runner
from pages import state

ACTIVE = ("queued", "running")
QUANTIZE_LABELS = {"none": "none (float32)", "float16": "float16 weights", "int8": "int8 throughout"}

st.title("Deploy")
dataset = state.dataset_name()
metric = state.task().metric
st.caption(f"Models trained on **{dataset}** and their LiteRT exports, measured by running the exported file "
           f"with the LiteRT interpreter: size, test {metric.name}, and latency for one example at batch 1.")

points = export.catalogue(dataset, metric.name)
sentence = export.verdict(points, metric)
if sentence:
    st.markdown(f"**{sentence}**")
else:
    st.info("Export a distilled student to int8 below to see how it compares with its teacher.", icon=":material/info:")
st.plotly_chart(figures.deployment_map(points, export.pareto(points, metric.higher_is_better), metric),
                key="deploy_map")
hidden = len(export.catalogue()) - len(points)
if hidden:
    st.caption(f"{hidden} model(s) or export(s) of other datasets are not shown: pick their dataset in the sidebar.")

# --- export ---------------------------------------------------------------------------------------
st.subheader("Export a model")
models = [m for m in storage.list_models() if m.get("dataset") in (dataset, None)
          and m.get("task", tasks.DEFAULT) == state.task().name]
if not models:
    st.info("No saved model for this dataset yet: train a teacher and distil a student first.", icon=":material/info:")
    st.stop()
by_path = {m["path"]: m for m in models}
active = state.active_model("student")
paths = list(by_path)
left, right = st.columns([2, 1])
chosen = left.selectbox("Model", paths, index=paths.index(active["path"]) if active and active["path"] in by_path else 0,
                        format_func=lambda p: f"{by_path[p]['name']} ({by_path[p].get('kind', 'model')})",
                        key="deploy_model")
quantize = right.radio("Quantization", export.QUANTIZE, index=export.QUANTIZE.index("int8"),
                       format_func=QUANTIZE_LABELS.get, key="deploy_quantize")

job = runner().get(st.session_state.get("deploy_job", ""))
busy = job is not None and job.status in ACTIVE
if st.button("Export", type="primary", disabled=busy, key="deploy_export"):
    meta = by_path[chosen]
    source = meta.get("dataset") or dataset
    job = runner().submit("export", f"Export {meta['name']} to LiteRT ({quantize})",
                          lambda _job: export.export(chosen, quantize, dataset=source),
                          {"model": chosen, "quantize": quantize}, source)
    st.session_state["deploy_job"] = job.id
    st.rerun()

if job is not None:
    live = job.status in ACTIVE

    @st.fragment(run_every=1.0 if live else None)
    def job_status():
        snap = job.progress.snapshot(curves=False)
        if live and snap["status"] not in ACTIVE:
            st.rerun()  # the whole page: the new point joins the chart
        if snap["status"] == "queued":
            st.info(f"{snap['title']}: queued behind a training run, so that its timings are taken on a quiet CPU.",
                    icon=":material/hourglass_top:")
        elif snap["status"] == "running":
            st.info(f"{snap['title']}: converting and measuring… (the first export of a model also times its "
                    "Keras call, in two fresh processes: about a minute)", icon=":material/hourglass_top:")
        elif snap["status"] == "finished":
            st.success(f"{snap['title']}: saved as {job.result['path']}.", icon=":material/check_circle:")
        else:
            state.error(ValueError(snap["reason"] or snap["status"]))

    job_status()

# --- exports ----------------------------------------------------------------------------------------
exports = [e for e in export.list_exports() if e.get("dataset") == dataset and e.get(metric.name) is not None]
if exports:
    st.subheader("Exports")
    scale = 100 if metric.percent else 1
    shown, change = ((f"{metric.name} (%)", "vs float (points)") if metric.percent else (metric.name, "vs float"))
    table = pd.DataFrame([{
        "file": e["name"], "quantize": e["quantize"], "KB": e["bytes"] / 1024,
        shown: scale * e[metric.name], change: scale * e[f"{metric.name}_change"],
        "1 thread": export.duration(e["latency_ms"]["threads_1"]["median"]),
        "2 threads": export.duration(e["latency_ms"]["threads_2"]["median"]),
        "Keras, 1 thread": export.duration((e.get("keras_latency_ms") or {}).get("threads_1", {}).get("median")),
    } for e in exports])
    st.dataframe(table, hide_index=True, column_config={
        "KB": st.column_config.NumberColumn(format="%.1f"),
        shown: st.column_config.NumberColumn(format="%.1f"),
        change: st.column_config.NumberColumn(format="%+.2f")})
    st.caption("Latency: median time of one example at batch 1 (for a language model, one window of words); the "
               "90th percentile is in each export's JSON sidecar.")
    by_file = {e["path"]: e for e in exports}
    picked = st.selectbox("File to download", list(by_file), format_func=lambda p: by_file[p]["name"],
                          key="deploy_download_pick")
    try:
        with open(picked, "rb") as fh:
            st.download_button("Download .tflite", fh.read(), file_name=by_file[picked]["name"],
                               mime="application/octet-stream", key="deploy_download")
    except OSError as exc:
        state.error(exc)
