import yazl from 'yazl';

/** The canonical zip of a bundle: every file under `<root>/`, deflated, fixed timestamps. */
export function writeZip(
  root: string,
  files: { path: string; data: Buffer; executable: boolean }[],
): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const mtime = new Date(Date.UTC(2000, 0, 1));
  for (const f of files) {
    zip.addBuffer(f.data, `${root}/${f.path}`, { mtime, mode: f.executable ? 0o100755 : 0o100644 });
  }
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.once('error', reject);
    zip.outputStream.once('end', () => resolve(Buffer.concat(chunks)));
  });
}
