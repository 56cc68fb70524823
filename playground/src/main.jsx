// The analysts' playground. Everything here is served by mlgate itself
// (no CDN): GraphiQL's Monaco workers included.
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import './styles.css';

import { createRoot } from 'react-dom/client';
import { App } from './App.jsx';

createRoot(document.getElementById('root')).render(<App />);
