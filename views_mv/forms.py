from __future__ import annotations

from django import forms

from pools import column_types, table_settings
from pools.models import DataPool, name_validator


class SqlForm(forms.Form):
    sql = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        label="SQL",
        help_text="A SELECT over one Data Pool. Pool names are table names.",
    )


class DestinationForm(forms.Form):
    NEW, EXISTING = "new", "existing"
    kind = forms.ChoiceField(
        choices=[(NEW, "New Data Pool"), (EXISTING, "Existing Data Pool")],
        widget=forms.RadioSelect,
        initial=NEW,
    )
    new_name = forms.CharField(required=False, max_length=63, label="Name of the new Data Pool")
    existing = forms.ModelChoiceField(
        queryset=DataPool.objects.filter(kind=DataPool.Kind.MATERIALIZED),
        required=False,
        to_field_name="name",
        label="Existing Data Pool",
    )

    def __init__(self, *args, source: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        # Only pools a view can write into: fed by views, and not the view's own source.
        self.fields["existing"].queryset = DataPool.objects.filter(kind=DataPool.Kind.MATERIALIZED).exclude(
            name=source
        )
        self.fields["existing"].empty_label = None
        self.has_existing = self.fields["existing"].queryset.exists()

    def _taken(self, pool: DataPool) -> str:
        if pool.name == self.source:
            return (
                f"{pool.name} is the view's source; a view cannot write into the pool it reads. "
                "Choose another name."
            )
        if pool.kind != DataPool.Kind.MATERIALIZED:
            return f"{pool.name} receives Firehose data, so a view cannot write into it. Choose another name."
        return f"A Data Pool named {pool.name} exists; choose “Existing Data Pool” to write into it."

    def clean(self):
        data = super().clean()
        if data.get("kind") == self.NEW:
            if not data.get("new_name"):
                self.add_error("new_name", "Name the new Data Pool.")
            else:
                try:
                    name_validator(data["new_name"])
                except forms.ValidationError as exc:
                    self.add_error("new_name", exc)
                else:
                    taken = DataPool.objects.filter(name__iexact=data["new_name"]).first()
                    if taken is not None:
                        self.add_error("new_name", self._taken(taken))
        elif not self.has_existing:
            self.add_error("kind", "No Data Pool fed by views exists yet: create a new one.")
        elif not data.get("existing"):
            self.add_error("existing", "Choose the Data Pool to write into.")
        return data


class TableForm(forms.Form):
    mode = forms.ChoiceField(
        choices=[
            (table_settings.APPEND_ONLY, "Append-only data"),
            (table_settings.MUTABLE, "Mutable records"),
        ],
        widget=forms.RadioSelect,
        initial=table_settings.MUTABLE,
    )
    unique = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Which columns uniquely identify your records?",
    )
    time_column = forms.ChoiceField(
        required=False, label="Will you query your data by time?", widget=forms.RadioSelect
    )
    filters = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Are there columns you always filter by?"
    )
    version = forms.ChoiceField(
        required=False, label="Is there an updated_at or version column?", widget=forms.RadioSelect
    )
    nullable_keys = forms.BooleanField(
        required=False,
        label="Store NULL as the default",
        help_text="A key column of a Nullable type keeps its type's default (empty string, 0, "
        "1970-01-01) where the SELECT gives NULL.",
    )

    accept_type_changes = forms.BooleanField(
        required=False,
        label="Store these values changed",
        help_text="A column stored as another type than the query declares holds what that type can: "
        "e.g. NULL becomes 0 in Int32.",
    )

    def __init__(self, *args, columns: dict[str, str], dynamodb_source: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        keys = [(c, c) for c in table_settings.key_columns(columns)]
        self.fields["unique"].choices = keys
        self.fields["filters"].choices = keys
        self.fields["time_column"].choices = [("", "No")] + [
            (c, c) for c in table_settings.time_columns(columns)
        ]
        if dynamodb_source:
            # The guide leaves this question empty, which means the second answer. Kinesis and
            # Firehose may deliver one item's changes out of order and more than once, so with
            # it an older change that arrives late overwrites a newer one: Shoal recommends the first.
            defaults = [
                (
                    "",
                    "Yes, the time of each DynamoDB change (recommended: the latest change wins, "
                    "whatever order Kinesis delivers them in)",
                ),
                (
                    "arrival",
                    "No, what the guide does by leaving this empty: the change received last "
                    "wins, even an older one delivered late",
                ),
            ]
        else:
            defaults = [("", "No (the last change received wins)")]
        self.fields["version"].choices = defaults + [(c, c) for c in table_settings.version_columns(columns)]
        for name, type_ in columns.items():
            self.fields[f"type__{name}"] = forms.CharField(initial=type_, label=name, max_length=200)

    def clean(self):
        data = super().clean()
        for name in list(self.fields):
            if name.startswith("type__") and data.get(name):
                try:
                    data[name] = column_types.canonical(data[name])
                except column_types.TypeSyntaxError as exc:
                    self.add_error(name, str(exc))
        return data

    def type_fields(self):
        return [self[name] for name in self.fields if name.startswith("type__")]


class ConfirmForm(forms.Form):
    name = forms.CharField(max_length=63, validators=[name_validator], label="Materialized View name")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    backfill = forms.BooleanField(
        required=False, initial=True, label="Backfill: copy the records already in the source"
    )


class EditSqlForm(forms.Form):
    """The view page's "Edit SQL": the new SELECT (checked by services.replace_sql)."""

    sql = forms.CharField(strip=False, error_messages={"required": "Write the SELECT that defines the view."})


class ReplicaCheckForm(forms.Form):
    """The view page's Replica check: which table, through which AWS connection."""

    connection = forms.ModelChoiceField(queryset=None)
    table = forms.CharField(max_length=255)

    def __init__(self, *args, **kwargs):
        from pools.aws.models import AwsConnection

        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = AwsConnection.objects.all()

    def clean(self):
        data = super().clean()
        if self.errors:
            raise forms.ValidationError("Choose the AWS connection and the DynamoDB table to compare with.")
        return data


class DeleteViewForm(forms.Form):
    delete_target = forms.BooleanField(required=False)
