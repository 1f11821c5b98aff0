"""Every session-state key of the dashboard in one place, and how often pages refresh."""

from __future__ import annotations

# How often self-refreshing parts of a page re-read the registry (seconds): often while a job moves,
# seldom while none does (other people's uploads still show up within IDLE_REFRESH_S).
REFRESH_S = 0.5
IDLE_REFRESH_S = 10
# While a job moves, each refresh first waits up to this long for a status change from Redis, so a page
# shows "staged" the moment the worker says so rather than on its next tick (kept below REFRESH_S).
CHANGE_WAIT_S = 0.35
# The health banner re-checks Redis and workers on its own, a little less often.
HEALTH_REFRESH_S = 5
# Query parameter that names the job on the review page (?job=<id>).
QUERY_JOB = "job"
DEFAULT_DATASET = "products"

# Session-state keys. Widgets that keep their value across pages use persist_state="session".
STATUS_WATCH = "bi_status_watch"  # this session's progress.StatusWatch while a job it shows moves
USER = "bi_user"  # the logged-in bulkimport.users.User, as of this run
SESSION = "bi_session"  # id of the login session (bulkimport.sessions) this browser's cookie names
LOGIN_SUBMIT = "bi_login_submit"
LOGOUT = "bi_logout"
UPLOAD_DATASET = "bi_upload_dataset"
UPLOAD_BRAND = "bi_upload_brand"
UPLOAD_FILE = "bi_upload_file"
UPLOAD_STORED = "bi_upload_stored"  # (uploader file id, workflow.Upload) of the file being previewed
UPLOAD_SUBMITTED = "bi_upload_submitted"  # uploader file id of the file that became the last job
UPLOAD_ENCODING = "bi_upload_encoding"
UPLOAD_DELIMITER = "bi_upload_delimiter"
UPLOAD_QUOTE = "bi_upload_quote"
UPLOAD_ESCAPE = "bi_upload_escape"
UPLOAD_HEADER_ROW = "bi_upload_header_row"
UPLOAD_SHEET = "bi_upload_sheet"
UPLOAD_SPACES = "bi_upload_spaces"  # spaces after a delimiter: detected, skipped or kept
UPLOAD_NO_HEADER = "bi_upload_no_header"  # the file has no header line: columns in dataset order
UPLOAD_HEADER_AS_WRITTEN = "bi_upload_header_as_written"  # do not cut a header cell that seems to have lost a delimiter
UPLOAD_MAPPING = "bi_upload_mapping"  # the mapping editor's edits
UPLOAD_MAPPING_BASE = "bi_upload_mapping_base"  # what the editor's edits apply to
UPLOAD_PREVIEWS = "bi_upload_previews"  # recent previews, so a rerun does not read the file again
UPLOAD_SUBMIT = "bi_upload_submit"
UPLOAD_DISCARD = "bi_upload_discard"
LAST_UPLOAD = "bi_last_upload"  # id of the job this session submitted last
JOBS_STATUS = "bi_jobs_status"
JOBS_DATASET = "bi_jobs_dataset"
JOBS_BRAND = "bi_jobs_brand"
JOBS_OPEN = "bi_jobs_open"
REVIEW_JOB = "bi_review_job"
REVIEW_REASON = "bi_review_reason"
REVIEW_APPROVE = "bi_review_approve"
REVIEW_REJECT = "bi_review_reject"
REVIEW_REVERT = "bi_review_revert"
REVIEW_CANCEL = "bi_review_cancel"
REVIEW_RETRY = "bi_review_retry"
REVIEW_DOWNLOAD_REJECTED = "bi_review_download_rejected"
REVIEW_CONFIRM_DELETES = "bi_review_confirm_deletes"
REVIEW_FIX_GRID = "bi_review_fix_grid"  # + job id and version: edits start afresh after each check
REVIEW_FIX_CHECK = "bi_review_fix_check"
REVIEW_FIX_ACCEPT_ALL = "bi_review_fix_accept_all"
UPLOAD_MODE = "bi_upload_mode"
UPLOAD_DUPLICATE_OK = "bi_upload_duplicate_ok"
REVIEW_DOWNLOAD_REJECTED_XLSX = "bi_review_download_rejected_xlsx"
REVIEW_DOWNLOAD_VALID = "bi_review_download_valid"
REVIEW_DOWNLOAD_VALID_XLSX = "bi_review_download_valid_xlsx"
REVIEW_RECHECK = "bi_review_recheck"
DATASETS_PICK = "bi_datasets_pick"
DATASETS_DRAFT_NAME = "bi_datasets_draft_name"
DATASETS_DRAFT_FILE = "bi_datasets_draft_file"
DATASETS_DRAFTS = "bi_datasets_drafts"  # drafts made this session: (name, file id) -> Draft or the error
FLASH = "bi_flash"  # messages from button callbacks, shown once on the next render
