import { defineConfig } from 'vitest/config';

// The bundle is written into ../assets/web, which build.rs embeds in the Rust binary.
// No React plugin: esbuild's automatic JSX runtime is all this app needs.
export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: '../assets/web',
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  test: {
    include: ['src/**/*.test.{ts,tsx}'],
    environment: 'node',
  },
});
