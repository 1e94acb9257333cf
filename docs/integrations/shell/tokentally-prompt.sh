# tokentally in your shell prompt (bash or zsh). Source this file from ~/.bashrc or
# ~/.zshrc:
#
#   TOKENTALLY_HOME=~/tokentally            # your checkout (where `make all` runs)
#   . ~/tokentally/docs/integrations/shell/tokentally-prompt.sh
#
# then put $TOKENTALLY_SEGMENT in your prompt:
#
#   bash:  PROMPT_COMMAND="tokentally_precmd${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
#          PS1='[$TOKENTALLY_SEGMENT] \w \$ '
#   zsh:   autoload -Uz add-zsh-hook; add-zsh-hook precmd tokentally_precmd
#          setopt PROMPT_SUBST; PROMPT='[$TOKENTALLY_SEGMENT] %~ %# '
#
# The segment is `snapshot --statusline`: it reads ui-snapshot.json and nothing else
# (~35 ms), e.g. "today $4.12 · Aug $82.81 · block claude $2.49 @ $1.20/h, 1h32m left".
# TOKENTALLY_ARTIFACTS picks another bundle (default: the checkout's artifacts/).
# TOKENTALLY_BIN overrides the command. Nothing here rebuilds the bundle: run
# `make -C "$TOKENTALLY_HOME" all` from cron or a hook to keep it fresh.

tokentally_status() {
  local bin="${TOKENTALLY_BIN:-${TOKENTALLY_HOME:-$HOME/tokentally}/.venv/bin/snapshot}"
  [ -x "$bin" ] || return 0
  if [ -n "${TOKENTALLY_ARTIFACTS:-}" ]; then
    "$bin" --statusline --artifacts "$TOKENTALLY_ARTIFACTS" </dev/null 2>/dev/null
  else
    "$bin" --statusline </dev/null 2>/dev/null
  fi
}

tokentally_precmd() {
  local status=$?  # keep the last command's exit status for the rest of the prompt
  TOKENTALLY_SEGMENT="$(tokentally_status)"
  return $status
}
