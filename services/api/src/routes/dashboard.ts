import { readFileSync } from 'node:fs';
import { Router } from 'express';

const asset = (name: string) => readFileSync(new URL(`../dashboard/${name}`, import.meta.url));

/**
 * `/dashboard`: one HTML page and one script, both served from here (no CDN, works offline). The
 * page is public; everything it shows comes from `/v1/admin/*` with the admin key typed into it.
 */
export function dashboardRoutes(): Router {
  const html = asset('index.html');
  const js = asset('dashboard.js');
  const router = Router();
  const headers = {
    // Only this origin's own script and API; the key never leaves for anywhere else.
    'Content-Security-Policy':
      "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  };
  router.get('/dashboard', (_req, res) => {
    res.set(headers).type('html').send(html);
  });
  router.get('/dashboard/dashboard.js', (_req, res) => {
    res.set(headers).type('application/javascript').send(js);
  });
  return router;
}
