"""Forms of AWS connections, of the pipeline wizard, of teardown and of the initial snapshot.

botocore checks only required fields, types and minimums, never maximums or patterns, so every
AWS limit a user can hit is enforced here.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from datetime import UTC
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils import timezone

from pools.aws.clients import available_regions
from pools.aws.models import AwsConnection, delivery_url_problem
from pools.aws.snapshot import MAX_SEGMENTS

STREAM_NAME = RegexValidator(
    r"^[a-zA-Z0-9_.-]{1,128}$", "1 to 128 letters, digits, underscores, periods or hyphens.", flags=re.ASCII
)
FIREHOSE_NAME = RegexValidator(
    r"^[a-zA-Z0-9_.-]{1,64}$", "1 to 64 letters, digits, underscores, periods or hyphens.", flags=re.ASCII
)
ROLE_NAME = RegexValidator(
    r"^[\w+=,.@-]{1,64}$", "1 to 64 letters, digits and + = , . @ _ - characters.", flags=re.ASCII
)
ROLE_ARN = RegexValidator(
    r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$",
    "A role ARN such as arn:aws:iam::123456789012:role/shoal-console.",
    flags=re.ASCII,
)
EXTERNAL_ID = RegexValidator(
    r"^[\w+=,.@:/-]{2,1224}$", "2 to 1224 letters, digits and + = , . @ : / - characters.", flags=re.ASCII
)
ACCESS_KEY_ID = RegexValidator(r"^\w{1,128}$", "Letters and digits only (an access key id).", flags=re.ASCII)

BUFFER_SIZE_MIB = (1, 64)
BUFFER_INTERVAL_S = (0, 900)
RETRY_DURATION_S = (0, 7200)
ENDPOINT_URL_MAX = 1000
HTTP_ENDPOINT_NAME_MAX = 256


def validate_bucket_name(name: str) -> None:
    """S3 general purpose bucket naming rules."""
    problems = []
    if not 3 <= len(name) <= 63:
        problems.append("3 to 63 characters")
    if not re.fullmatch(r"[a-z0-9.-]*", name):
        problems.append("only lowercase letters, digits, periods and hyphens")
    if name and not (name[0].isalnum() and name[-1].isalnum()):
        problems.append("begin and end with a letter or digit")
    if ".." in name or ".-" in name or "-." in name:
        problems.append("no two periods together, and no period next to a hyphen")
    try:
        ipaddress.IPv4Address(name)
        problems.append("not formatted as an IP address")
    except ValueError:
        pass
    if name.startswith(("xn--", "sthree-", "amzn-s3-demo-")):
        problems.append("not start with xn--, sthree- or amzn-s3-demo-")
    if name.endswith(("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")):
        problems.append("not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3")
    if problems:
        raise ValidationError("An S3 bucket name must have " + "; ".join(problems) + ".")


def validate_delivery_url(url: str, *, emulator: bool = False) -> None:
    """Firehose delivers to https:// on port 443 only; a local emulator accepts anything."""
    if len(url) > ENDPOINT_URL_MAX:
        raise ValidationError(f"At most {ENDPOINT_URL_MAX} characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("An http(s) URL.")
    problem = delivery_url_problem(url).replace("PUBLIC_BASE_URL is ", "The URL is ")
    if problem and not emulator:
        raise ValidationError(problem)


def clean_name(text: str, allowed: str = r"a-zA-Z0-9_.-", limit: int = 64) -> str:
    cleaned = re.sub(f"[^{allowed}]+", "-", text).strip("-.")
    return cleaned[:limit].rstrip("-.") or "shoal"


def default_bucket_name(table: str) -> str:
    base = clean_name(table.lower(), "a-z0-9-", 30)
    return f"shoal-failed-{base}-{secrets.token_hex(4)}"


class ConnectionForm(forms.ModelForm):
    secret_access_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the stored one.",
    )

    class Meta:
        model = AwsConnection
        fields = ["name", "region", "auth_method", "access_key_id", "role_arn", "external_id", "endpoint_url"]
        widgets = {"auth_method": forms.RadioSelect}
        help_texts = {
            "role_arn": "Shoal assumes this role with STS, using the default credential chain.",
            "external_id": "If the role's trust policy asks for one.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"] = forms.ChoiceField(
            choices=[(r, r) for r in available_regions()], initial=self.instance.region or "us-east-1"
        )
        self.fields["access_key_id"].validators.append(ACCESS_KEY_ID)
        self.fields["role_arn"].validators.append(ROLE_ARN)
        self.fields["external_id"].validators.append(EXTERNAL_ID)
        if settings.AWS_ALLOW_EMULATOR:
            self.fields["endpoint_url"].label = "Endpoint URL (emulator only)"
        else:
            del self.fields["endpoint_url"]

    def clean_endpoint_url(self) -> str:
        url = self.cleaned_data["endpoint_url"].strip().rstrip("/")
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValidationError("An http(s) URL such as http://127.0.0.1:5055.")
        return url

    def clean(self):
        data = super().clean()
        method = data.get("auth_method")
        if method == AwsConnection.Auth.ACCESS_KEY:
            if not data.get("access_key_id"):
                self.add_error("access_key_id", "Required for an access key pair.")
            if not data.get("secret_access_key") and not self.instance.has_secret:
                self.add_error("secret_access_key", "Required for an access key pair.")
            key = data.get("access_key_id") or ""
            if key and not data.get("endpoint_url") and not 16 <= len(key) <= 128:
                self.add_error("access_key_id", "An AWS access key id has 16 to 128 characters.")
        if method == AwsConnection.Auth.ASSUME_ROLE and not data.get("role_arn"):
            self.add_error("role_arn", "Required to assume a role.")
        return data

    def save(self, commit: bool = True) -> AwsConnection:
        connection = super().save(commit=False)
        if connection.auth_method != AwsConnection.Auth.ACCESS_KEY:
            connection.access_key_id = ""
            connection.secret_access_key_encrypted = ""
        elif self.cleaned_data.get("secret_access_key"):
            connection.set_secret_access_key(self.cleaned_data["secret_access_key"])
        if connection.auth_method != AwsConnection.Auth.ASSUME_ROLE:
            connection.role_arn = connection.external_id = ""
        if commit:
            connection.save()
        return connection


# --- Pipeline wizard ----------------------------------------------------------------------------


class SourceForm(forms.Form):
    connection = forms.ModelChoiceField(queryset=AwsConnection.objects.all(), empty_label=None)
    table = forms.CharField(max_length=255, error_messages={"required": "Choose a table."})

    def __init__(self, *args, tables: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.tables = tables

    def clean_table(self) -> str:
        table = self.cleaned_data["table"]
        if self.tables is not None and table not in self.tables:
            raise ValidationError(f"There is no table {table!r} in this connection's region.")
        return table


# How changes reach Shoal (Connect DynamoDB's "Delivery" step), with the trade-offs a user weighs.
DELIVERY_MODES = [
    (
        "firehose",
        "Firehose push",
        "The guide's path: the table streams into Kinesis and Firehose posts each batch to this pool's "
        "HTTPS endpoint. Needs a public https:// URL on port 443. Pays for Kinesis and Firehose; "
        "batches arrive every 60 s or 1 MiB.",
    ),
    (
        "kinesis_pull",
        "Kinesis pull",
        "The table streams into Kinesis (the guide's Step 1) and Shoal reads the stream itself: no "
        "Firehose, no public endpoint. Pays for Kinesis only; changes arrive within about a second; "
        "the stream keeps them 24 hours if Shoal is stopped.",
    ),
    (
        "streams_pull",
        "DynamoDB Streams pull",
        "Shoal turns on the table's DynamoDB stream (new and old images) and reads it: no Kinesis, no "
        "Firehose, no public endpoint. The cheapest (reads are free for one reader); changes arrive "
        "within about a second and are kept 24 hours; timestamps are to the second.",
    ),
]


PULL_STARTS = [
    (
        "oldest",
        "From the oldest record the stream keeps",
        "Everything the stream still holds (up to 24 hours; for a stream Shoal turns on, everything "
        "since then). Records also in the backfill collapse into one row.",
    ),
    ("now", "From now", "Only the changes made after you create the pipeline; backfill the rest."),
    ("at", "From a time", "The changes made since a time (UTC) within the stream's retention."),
]


class DeliveryForm(forms.Form):
    mode = forms.ChoiceField(choices=[(key, label) for key, label, _ in DELIVERY_MODES])
    start = forms.ChoiceField(
        choices=[(key, label) for key, label, _ in PULL_STARTS], required=False, initial="oldest"
    )
    start_at = forms.DateTimeField(
        label="Start at (UTC)",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )

    def clean(self):
        data = super().clean()
        if data.get("mode") == "firehose":  # Firehose reads from when it is created: no choice
            data.update(start="oldest", start_at=None)
            return data
        data["start"] = data.get("start") or "oldest"
        if data["start"] != "at":
            data["start_at"] = None
            return data
        start_at = data.get("start_at")
        if start_at is None:
            self.add_error("start_at", "Give the time to start at (UTC), e.g. 2026-12-05T09:30.")
        else:
            start_at = start_at.replace(tzinfo=UTC) if timezone.is_naive(start_at) else start_at
            if start_at > timezone.now():
                self.add_error(
                    "start_at", "The time is in the future: choose From now, or a time that has passed."
                )
            data["start_at"] = start_at
        return data


class StreamForm(forms.Form):
    MODES = [("new", "Create a new on-demand stream"), ("existing", "Use an existing stream")]
    mode = forms.ChoiceField(choices=MODES, widget=forms.RadioSelect, initial="new")
    new_name = forms.CharField(
        label="New stream name", required=False, max_length=128, validators=[STREAM_NAME]
    )
    existing_name = forms.CharField(label="Existing stream", required=False, max_length=128)

    def __init__(self, *args, streams: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.streams = streams or []

    def clean(self):
        data = super().clean()
        if data.get("mode") == "new":
            if not data.get("new_name"):
                self.add_error("new_name", "Name the new stream.")
            elif data["new_name"] in self.streams:
                self.add_error("new_name", "A stream with this name exists already; choose it as existing.")
            data["stream_name"] = data.get("new_name", "")
        elif data.get("mode") == "existing":
            if data.get("existing_name") not in self.streams:
                self.add_error("existing_name", "Choose one of the streams listed.")
            data["stream_name"] = data.get("existing_name", "")
        return data


class FirehoseForm(forms.Form):
    """Step 3 of the guide, prefilled: the pool's endpoint, 7200 s retries, no encoding, 1 MiB."""

    firehose_name = forms.CharField(label="Firehose stream name", max_length=64, validators=[FIREHOSE_NAME])
    http_endpoint_name = forms.CharField(label="HTTP endpoint name", max_length=HTTP_ENDPOINT_NAME_MAX)
    endpoint_url = forms.CharField(label="HTTP endpoint URL", max_length=ENDPOINT_URL_MAX)
    retry_duration_s = forms.IntegerField(
        label="Retry duration (seconds)", min_value=RETRY_DURATION_S[0], max_value=RETRY_DURATION_S[1]
    )
    content_encoding = forms.ChoiceField(
        label="Content encoding", choices=[("NONE", "Not enabled"), ("GZIP", "GZIP")]
    )
    buffer_size_mib = forms.IntegerField(
        label="Buffer size (MiB)", min_value=BUFFER_SIZE_MIB[0], max_value=BUFFER_SIZE_MIB[1]
    )
    buffer_interval_s = forms.IntegerField(
        label="Buffer interval (seconds)", min_value=BUFFER_INTERVAL_S[0], max_value=BUFFER_INTERVAL_S[1]
    )
    bucket_mode = forms.ChoiceField(
        choices=[("new", "Create a new bucket"), ("existing", "Use an existing bucket")],
        widget=forms.RadioSelect,
        initial="new",
    )
    new_bucket = forms.CharField(label="New bucket name", required=False, max_length=63)
    existing_bucket = forms.CharField(label="Existing bucket", required=False, max_length=63)
    role_name = forms.CharField(label="IAM role for Firehose", max_length=64, validators=[ROLE_NAME])

    def __init__(self, *args, emulator: bool = False, buckets: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.emulator = emulator
        self.buckets = buckets or []

    def clean_http_endpoint_name(self) -> str:
        name = self.cleaned_data["http_endpoint_name"]
        if not name.strip():
            raise ValidationError("Give the endpoint a name.")
        return name

    def clean_endpoint_url(self) -> str:
        url = self.cleaned_data["endpoint_url"].strip()
        validate_delivery_url(url, emulator=self.emulator)
        return url

    def clean(self):
        data = super().clean()
        if data.get("bucket_mode") == "new":
            name = data.get("new_bucket", "")
            if not name:
                self.add_error("new_bucket", "Name the new bucket.")
            else:
                try:
                    validate_bucket_name(name)
                except ValidationError as exc:
                    self.add_error("new_bucket", exc)
                if name in self.buckets:
                    self.add_error("new_bucket", "This bucket exists already; choose it as existing.")
            data["bucket_name"] = name
        elif data.get("bucket_mode") == "existing":
            if data.get("existing_bucket") not in self.buckets:
                self.add_error("existing_bucket", "Choose one of the buckets listed.")
            data["bucket_name"] = data.get("existing_bucket", "")
        return data


class TeardownForm(forms.Form):
    keep_bucket = forms.BooleanField(
        required=False, label="Keep the S3 bucket and its objects (failed deliveries, archives)"
    )


class SnapshotForm(forms.Form):
    method = forms.ChoiceField(
        label="Method",
        choices=[
            ("scan", "Scan: reads the table's capacity; good for small tables"),
            ("export", "Export to S3: no read capacity; needs point-in-time recovery (DynamoDB JSON)"),
        ],
        initial="scan",
        widget=forms.RadioSelect,
    )
    export_bucket = forms.CharField(
        label="Export bucket",
        max_length=63,
        required=False,
        help_text="Export to S3 only: the bucket AWS writes the export to; empty: the pipeline's bucket.",
    )
    enable_pitr = forms.BooleanField(
        label="Turn on point-in-time recovery if it is off (billed per GB-month of table size)",
        required=False,
    )
    total_segments = forms.IntegerField(
        label="Parallel segments",
        min_value=1,
        max_value=MAX_SEGMENTS,
        initial=4,
        help_text="Scan segments read at once (1–16).",
    )
    max_rcu_per_second = forms.FloatField(
        label="Read-capacity budget",
        min_value=0,
        max_value=1_000_000,
        initial=100,
        help_text="RCU per second for the whole scan; 0 for no limit.",
    )
    page_limit = forms.IntegerField(
        label="Items per page",
        min_value=1,
        max_value=100_000,
        required=False,
        help_text="Scan Limit; empty: as many as fit in 1 MB.",
    )
