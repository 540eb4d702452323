# apt_install installs Debian packages. apt-get's output is kept in the
# file $PAL_CI_APT_LOG (a new one when unset): on success nothing of it is
# printed, on failure its last lines, on standard error.
apt_install() {
	: "${PAL_CI_APT_LOG:=$(mktemp /tmp/pal-ci-apt.XXXXXX)}"
	echo "installing $* with apt-get (its output: $PAL_CI_APT_LOG)" >&2
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >>"$PAL_CI_APT_LOG" 2>&1; then
		echo "apt-get install $* failed; the last lines of $PAL_CI_APT_LOG:" >&2
		tail -n 20 "$PAL_CI_APT_LOG" >&2
		return 1
	fi
}
