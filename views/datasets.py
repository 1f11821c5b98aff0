"""What a file must look like for each dataset: columns, types, checks in words, other header names and the key;
templates to fill in; whether the lake's tables follow the definition; (admins) a draft dataset from a sample."""

import pandas as pd
import streamlit as st

from bulkimport import dataset_docs, ui
from bulkimport.config import masked
from bulkimport.datasets import all_datasets
from bulkimport.errors import BulkImportError

user = ui.require_user()
st.title("Datasets")

datasets = all_datasets()
names = list(datasets)
name = st.selectbox(
    "Dataset",
    names,
    key=ui.DATASETS_PICK,
    index=names.index(ui.DEFAULT_DATASET) if ui.DEFAULT_DATASET in names else 0,
)
dataset = datasets[name]
st.text(dataset.description)
st.caption(f"Key: {', '.join(dataset.key)} (unique within a brand) · version {dataset.version}")

columns = dataset_docs.columns(dataset)
st.dataframe(
    pd.DataFrame(
        [
            {
                "column": c.name,
                "type": c.kind,
                "required": "yes" if c.required else "no",
                "key": "yes" if c.key else "",
                "checks": "; ".join(c.checks),
                "other header names": ", ".join(c.aliases),
                "description": c.description,
            }
            for c in columns
        ]
    ),
    hide_index=True,
    column_config={"checks": st.column_config.TextColumn("checks", width="large")},
)
st.caption("Header names are matched ignoring case, spaces and punctuation; other columns in a file are ignored.")

csv_template, xlsx_template, _ = st.columns([1, 1, 2])
csv_template.download_button(
    "Template (CSV)",
    dataset_docs.template_csv(dataset),
    file_name=f"{dataset.name}-template.csv",
    mime="text/csv",
    icon=":material/download:",
    help="The header row, ready to fill in",
)
xlsx_template.download_button(
    "Template (Excel)",
    lambda: dataset_docs.template_xlsx(dataset),
    file_name=f"{dataset.name}-template.xlsx",
    mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    icon=":material/download:",
    help="The header row on the first sheet; a second sheet explains each column",
)

status = ui.lake_status(dataset.name, dataset.version)
if "error" in status:
    st.warning(
        f"Could not compare the dataset with the lake: {ui.escape(masked(status['error']))}",
        icon=":material/cloud_off:",
    )
elif status["breaking"]:
    st.error(
        "The lake's tables do not follow this definition yet, and a person must decide: "
        + "; ".join(status["breaking"])
        + f". Jobs of {dataset.name} fail until an admin runs `bulkimport datasets migrate {dataset.name}` "
        "(it shows what it will do and asks).",
        icon=":material/sync_problem:",
    )
elif status["additive"]:
    st.info("Applied on the next job: " + "; ".join(status["additive"]), icon=":material/sync:")
elif status["tables_exist"]:
    st.success("The lake's tables follow this definition.", icon=":material/check_circle:")
if status.get("history"):
    with st.expander(f"Changes to the tables ({len(status['history'])})"):
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "when": m["applied_at"],
                        "who": m["applied_by"],
                        "kind": m["kind"],
                        "what": "; ".join(m["changes"]) or "-",
                        "version": m["version"],
                    }
                    for m in status["history"]
                ]
            ),
            hide_index=True,
        )

if user.role == "admin":
    st.subheader("Draft a new dataset from a sample file")
    st.caption(
        "Column names, types, checks, required columns and a key are guessed from the sample, each with a comment. "
        "The draft accepts the sample itself; edit it, check it with `bulkimport datasets check FOLDER` and put it "
        "in the folder named by BULKIMPORT_DATASETS."
    )
    left, right = st.columns([1, 2])
    draft_name = left.text_input("Name of the new dataset", key=ui.DATASETS_DRAFT_NAME, placeholder="stores")
    draft_name = (draft_name or "").strip()
    sample = right.file_uploader("Sample file", type=["csv", "tsv", "txt", "xlsx"], key=ui.DATASETS_DRAFT_FILE)
    if sample is not None and draft_name:
        try:
            drafted = ui.draft_from_upload(draft_name, sample)
        except BulkImportError as exc:
            st.error(ui.escape(exc))
        else:
            st.download_button(
                f"Download {ui.escape(draft_name)}.py",
                drafted.source.encode("utf-8"),
                file_name=f"{draft_name}.py",
                mime="text/x-python",
                type="primary",
                icon=":material/download:",
            )
            st.caption(
                f"{len(drafted.columns)} columns, key ({ui.escape(', '.join(drafted.key))}); "
                f"all {drafted.rows} rows of the sample pass it."
            )
            st.code(drafted.source, language="python")
    elif sample is not None:
        st.caption("Give the new dataset a name to draft it.")
