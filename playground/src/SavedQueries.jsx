import { useGraphiQL, useGraphiQLActions } from '@graphiql/react';
import { parse } from 'graphql';
import { useContext } from 'react';

import { request } from './connection.js';
import { resolveVariables, SAVED_QUERIES } from './savedQueries.js';
import { SessionContext } from './session.js';

function SavedQueriesIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" strokeWidth="1.5" aria-hidden="true">
      <path d="M6 3h9l3 3v15H6z" />
      <path d="M9 10h6M9 14h6M9 18h4" />
    </svg>
  );
}

function SavedQueries() {
  const queryEditor = useGraphiQL((state) => state.queryEditor);
  const variableEditor = useGraphiQL((state) => state.variableEditor);
  const { run, stop, setOperationFacts } = useGraphiQLActions();
  const { token } = useContext(SessionContext);

  const load = async (saved) => {
    // A subscription that resumes from `{{alertCursor}}` misses nothing
    // between loading it and the server registering it.
    let cursor = null;
    if (saved.variables.includes('{{alertCursor}}')) {
      const { body } = await request(token, '{ driftAlertCursor }').catch(() => ({ body: {} }));
      cursor = body.data?.driftAlertCursor ?? null;
    }
    queryEditor?.setValue(saved.query);
    variableEditor?.setValue(resolveVariables(saved.variables, new Date(), cursor));
    // GraphiQL learns the document's operations from the editor after a
    // pause; running now would send the previous query's operation name.
    const documentAST = parse(saved.query);
    const operations = documentAST.definitions.filter((d) => d.kind === 'OperationDefinition');
    setOperationFacts({ documentAST, operations, operationName: operations[0]?.name?.value });
    // A running subscription is stopped first: `run` alone would only stop it.
    stop();
    run();
  };

  return (
    <section className="saved-queries" data-testid="saved-queries">
      <div className="graphiql-doc-explorer-title">Saved queries</div>
      <p className="hint">Dashboards' questions, ready to run. Variables are filled in; edit them freely.</p>
      <ul>
        {SAVED_QUERIES.map((saved) => (
          <li key={saved.id}>
            <button type="button" data-query={saved.id} onClick={() => load(saved)}>
              {saved.title}
            </button>
            <p>{saved.description}</p>
          </li>
        ))}
      </ul>
    </section>
  );
}

export const SAVED_QUERIES_PLUGIN = {
  title: 'Saved queries',
  icon: SavedQueriesIcon,
  content: SavedQueries,
};
