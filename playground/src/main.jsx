// The analysts' playground. Everything here is served by mlgate itself
// (no CDN): GraphiQL's Monaco workers included.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import './styles.css';

import { createRoot } from 'react-dom/client';
import { App } from './App.jsx';

// Monaco rejects its pending work with a `Canceled` error when an editor is
// disposed (GraphiQL remounts on sign-in, a reload); that is its way of
// cancelling, not a failure, and Monaco itself ignores it the same way.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason?.name === 'Canceled' && event.reason?.message === 'Canceled') event.preventDefault();
});

createRoot(document.getElementById('root')).render(<App />);
