/** Sizes in the build log: MB (10^6, like the 200 MB budget), kB below one MB. */
export const formatSize = (bytes: number): string =>
  bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`;

export const formatSeconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
