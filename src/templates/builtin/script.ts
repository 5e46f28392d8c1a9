import type { BuiltinKind } from '../kinds.js';

/**
 * Scripts the agent runs in the installer as a step of a run. The built-in one is an example
 * to copy: it says where it runs and succeeds; a non-zero exit fails the step.
 */

const DEFAULT = `#!/bin/sh
# Plinth: an example step script for {{ machine.name | line }} (run {{ run.id | line }}).
set -eu
printf 'Plinth: this is %s (%s run %s)\\n' {{ machine.name | shell_quote }} {{ run.kind | shell_quote }} {{ run.id | shell_quote }}
exit 0
`;

export const SCRIPT_TEMPLATES: BuiltinKind = {
  templates: { default: { contentType: 'text/x-shellscript; charset=utf-8', body: DEFAULT } },
  snippets: {},
  artifacts: [],
  defaultContentType: 'text/x-shellscript; charset=utf-8',
};
