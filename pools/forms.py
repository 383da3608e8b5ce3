"""Forms of the Create Data Pool wizard (pools/wizard.py), one per step that asks something."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from pools import sources, table_settings
from pools.models import DataPool
from pools.services import validate_pool_name

PASSWORD_MIN_LENGTH = 12

# What the "Select your data source" step shows: the source types (pools/sources/), then those
# that are announced but cannot be chosen yet.
SOURCES = [(source.key, source.label, source.description) for source in sources.all_types()]
SOURCES_SOON = [
    ("kafka", "Kafka", "Topics from Apache Kafka, Confluent or Redpanda."),
    ("webhook", "Webhook", "JSON events sent over HTTP."),
    ("s3", "Amazon S3", "Parquet, CSV or JSON files in a bucket."),
    ("snowflake", "Snowflake", "Tables synced from a Snowflake warehouse."),
]


class SourceForm(forms.Form):
    source = forms.ChoiceField(
        choices=[(key, label) for key, label, _ in SOURCES],
        widget=forms.RadioSelect,
        error_messages={
            "required": "Select a data source.",
            "invalid_choice": "That source is not available.",
        },
    )


class AuthForm(forms.Form):
    user = forms.CharField(
        label="User",
        max_length=150,
        validators=[
            RegexValidator(r"^[A-Za-z0-9._-]+$", "Use letters, digits, dots, underscores and hyphens.")
        ],
        error_messages={"required": "Enter a user."},
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    password = forms.CharField(
        label="Password",
        required=False,
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    confirm = forms.CharField(
        label="Confirm password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args, has_password: bool = False, **kwargs):
        # Coming back to this step, the password given before is kept unless a new one is typed.
        super().__init__(*args, **kwargs)
        self.has_password = has_password

    def clean(self):
        data = super().clean()
        password, confirm = data.get("password", ""), data.get("confirm", "")
        if not password and not confirm and self.has_password:
            data["password"] = None  # keep the one already given
        elif not password:
            self.add_error("password", "Enter a password.")
        elif len(password) < PASSWORD_MIN_LENGTH:
            self.add_error("password", f"Use at least {PASSWORD_MIN_LENGTH} characters.")
        elif password != confirm:
            self.add_error("confirm", "The passwords do not match.")
        return data


def _choices(names: list[str]) -> list[tuple[str, str]]:
    return [(name, name) for name in names]


NO = ("", "No")
# The question whose answer makes each table setting.
_ANSWER_OF = {"engine": "version", "version_column": "version", "timestamp_column": "time_column"}


class TableForm(forms.Form):
    """Propel's table settings questions; clean() derives the settings (or says what is wrong)."""

    mode = forms.ChoiceField(
        choices=list(table_settings.MODES.items()),
        widget=forms.RadioSelect,
        initial=table_settings.APPEND_ONLY,
        error_messages={"required": "Choose Append-only data or Mutable data."},
    )
    unique = forms.MultipleChoiceField(
        label="Which columns uniquely identify your records?",
        choices=_choices(table_settings.key_columns()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        initial=["event_id"],
    )
    time_column = forms.ChoiceField(
        label="Will you query your data by time?",
        choices=[*_choices(table_settings.time_columns()), NO],
        required=False,
        widget=forms.RadioSelect,
        initial="_received_at",
    )
    filters = forms.MultipleChoiceField(
        label="Are there columns you always filter by?",
        choices=_choices(table_settings.key_columns()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    version = forms.ChoiceField(
        label="Is there an updated_at or version column?",
        choices=[NO, *_choices(table_settings.version_columns())],
        required=False,
        initial="",
        widget=forms.RadioSelect,
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.settings = table_settings.derive(
                data["mode"],
                unique=data["unique"],
                time_column=data["time_column"] or None,
                filters=data["filters"],
                version=data["version"] or None,
            )
        except table_settings.TableSettingsError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
            return data
        # Say so here rather than at the last step if the pool could not store the settings.
        for field, value in self.settings.pool_fields().items():
            limit = DataPool._meta.get_field(field).max_length
            if limit and len(value) > limit:
                self.add_error(
                    _ANSWER_OF.get(field),
                    f"The {field.replace('_', ' ')} {value} is longer than a Data Pool can store "
                    f"({limit} characters); choose other columns.",
                )
        return data

    def answers(self) -> dict:
        data = self.cleaned_data
        mutable = data["mode"] == table_settings.MUTABLE
        return {
            "mode": data["mode"],
            "unique": data["unique"] if mutable else [],
            "time_column": data["time_column"] or None,
            "filters": data["filters"],
            "version": (data["version"] or None) if mutable else None,
        }


class NameForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=63,
        error_messages={"required": "Enter a name."},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "my_dynamo_orders_change_events",
            }
        ),
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What this Data Pool holds (optional)"}),
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        validate_pool_name(name)
        return name


def check_name(name: str) -> list[str]:
    """The problems with a pool name, for live validation (empty when it can be used)."""
    if not name:
        return ["Enter a name."]
    try:
        validate_pool_name(name)
    except ValidationError as exc:
        return exc.messages
    return []
