import { createContext } from 'react';

/** What the GraphiQL plugins need from the page: the credentials in use, and a way to show the alert feed as a result. */
export const SessionContext = createContext({ token: '', showFeed: () => {} });
