# Corral's host probe (corral.hosts.check): what a host has, as "key<TAB>value" lines
# between the BEGIN and END markers. Sent on stdin to `sh -s` over SSH, after the lines
# that set CORRAL_URL (the control plane's advertised URL, may be empty) and CORRAL_BASE
# (Corral's directory in the login user's home). POSIX sh only, and every finding is
# optional: a host without Python or Java (or ss, curl ...) still answers with the rest.
# It changes nothing on the host.
LC_ALL=C
export LC_ALL

emit() {
    # One line per fact: tabs and newlines in a value become blanks.
    printf '%s\t%s\n' "$1" "$(printf '%s' "$2" | tr '\t\r\n' '   ')"
}

os_release() {
    sed -n "s/^$1=//p" /etc/os-release 2>/dev/null | head -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

echo "CORRAL-PROBE-BEGIN 1"
emit user "$(id -un 2>/dev/null)"
emit home "$HOME"
emit ssh_connection "$SSH_CONNECTION"
emit kernel_name "$(uname -s 2>/dev/null)"
emit kernel_release "$(uname -r 2>/dev/null)"
emit machine "$(uname -m 2>/dev/null)"
if [ -r /etc/os-release ]; then
    emit os_id "$(os_release ID)"
    emit os_id_like "$(os_release ID_LIKE)"
    emit os_version_id "$(os_release VERSION_ID)"
    emit os_pretty_name "$(os_release PRETTY_NAME)"
fi

# Python 3.11 with venv and ensurepip: the agent's virtual environment is built with it.
# The one on PATH, else Debian's; one that does not start (a broken pyenv shim) is
# reported only when no other does.
py=
failed=
for candidate in "$(command -v python3.11 2>/dev/null)" /usr/bin/python3.11; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if out=$("$candidate" -c 'import sys; print("%d.%d.%d %s" % (sys.version_info[:3] + (sys.executable,)))' 2>&1); then
        py=$candidate
        break
    fi
    [ -n "$failed" ] || failed="$candidate: $(printf '%s\n' "$out" | tail -n 1)"
done
if [ -n "$py" ]; then
    emit python_path "$py"
    emit python_version "${out%% *}"
    emit python_executable "${out#* }"
    # The interpreter itself from here on (a pyenv shim costs a second per start).
    if [ -x "${out#* }" ]; then py="${out#* }"; fi
    if out=$("$py" -c 'import venv, ensurepip' 2>&1); then
        emit python_venv ok
    else
        emit python_venv "$(printf '%s\n' "$out" | tail -n 1)"
    fi
elif [ -n "$failed" ]; then
    emit python_path "${failed%%: *}"
    emit python_error "${failed#*: }"
fi

# Java as the agent finds it: JAVA_HOME's, else the one on PATH.
java=
if [ -n "$JAVA_HOME" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    java="$JAVA_HOME/bin/java"
    emit java_home "$JAVA_HOME"
else
    java=$(command -v java 2>/dev/null)
fi
if [ -n "$java" ]; then
    emit java_path "$(readlink -f "$java" 2>/dev/null || printf '%s' "$java")"
    emit java_version "$("$java" -version 2>&1 | grep -i 'version' | head -n 1)"
fi

emit cores "$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"
emit mem_total_kb "$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo 2>/dev/null)"
emit mem_available_kb "$(sed -n 's/^MemAvailable:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo 2>/dev/null)"

# Free disk of the file system that holds (or will hold) Corral's directory.
dir="$HOME/$CORRAL_BASE"
while [ ! -e "$dir" ] && [ "$dir" != / ] && [ -n "$dir" ]; do dir=$(dirname "$dir"); done
emit disk_for "$HOME/$CORRAL_BASE"
emit disk_path "$dir"
emit disk_df "$(df -Pk "$dir" 2>/dev/null | tail -n 1)"

# Listening TCP sockets, with their processes where the login user may see them.
if command -v ss >/dev/null 2>&1; then
    lines=$(ss -ltnpH 2>/dev/null) || lines=$(ss -ltnH 2>/dev/null)
    printf '%s\n' "$lines" | while IFS= read -r line; do
        [ -n "$line" ] && emit ss "$line"
    done
else
    inodes=
    for table in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$table" ] || continue
        while read -r _ local _ state _ _ _ _ _ inode _; do
            if [ "$state" = 0A ]; then
                emit proc_tcp "$local $inode"
                inodes="$inodes $inode"
            fi
        done < "$table"
    done
    if [ -n "$inodes" ]; then
        # One `ls` over every process's descriptors (a readlink per descriptor would fork
        # thousands of times); its "/proc/PID/fd:" headers say whose descriptors follow.
        ls -l /proc/[0-9]*/fd 2>/dev/null | awk -v want="$inodes " '
            /^\/proc\/[0-9]+\/fd:$/ { split($0, p, "/"); pid = p[3]; next }
            /socket:\[/ { i = $NF; gsub(/[^0-9]/, "", i); if (index(want, " " i " ")) print i, pid }' |
        while read -r inode pid; do
            emit proc_socket "$inode $pid $(cat "/proc/$pid/comm" 2>/dev/null)"
        done
    fi
fi

# Can the host reach the control plane back (agents call it; nothing calls them)?
if [ -n "$CORRAL_URL" ]; then
    url="$CORRAL_URL/api/v1/health"
    emit reach_url "$url"
    if [ -n "$py" ] && "$py" -c 'import urllib.request' 2>/dev/null; then
        emit reach_tool "$py"
        if out=$("$py" -c '
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
        print("HTTP %d" % answer.status)
except Exception as exc:
    print("%s: %s" % (type(exc).__name__, exc))
    sys.exit(1)
' "$url" 2>&1); then emit reach_ok 1; else emit reach_ok 0; fi
        emit reach_detail "$out"
    elif command -v curl >/dev/null 2>&1; then
        emit reach_tool curl
        if out=$(curl -sS -f -m 5 -o /dev/null -w 'HTTP %{http_code}' "$url" 2>&1); then emit reach_ok 1; else emit reach_ok 0; fi
        emit reach_detail "$out"
    elif command -v wget >/dev/null 2>&1; then
        emit reach_tool wget
        if out=$(wget -q -T 5 -t 1 -O /dev/null "$url" 2>&1); then
            emit reach_ok 1
            emit reach_detail "answered"
        else
            emit reach_ok 0
            emit reach_detail "${out:-wget exited with an error}"
        fi
    else
        emit reach_tool none
    fi
fi
echo "CORRAL-PROBE-END"
