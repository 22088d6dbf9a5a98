// Parts of the fixture and of the generator that can be switched off. CI (differential.test.ts)
// runs DEFAULT_FEATURES. A part goes off only while a known layerfs bug makes CI fail on it and
// a narrow rule in known.ts cannot describe the difference: the bug is then reported with a
// minimized reproduction and a regression test of its own, and the switch goes back on with the
// fix. scripts/fuzz/run can switch parts on or off (--all-features, --no-<feature>).

export interface Features {
  /** A hard-linked pair (h1, h2) in lower0 (its copy-up gets an st_ino of its own). */
  lowerHardLinks?: boolean
  /** Modes with S_ISGID (chmod 2755, mkdir 2775): group inheritance, over whiteouts too. */
  setgid?: boolean
  /**
   * Not a part of the fixture: every mount (both sides) with metacopy=on (metacopy.test.ts,
   * scripts/fuzz/run --metacopy). Kept with the features so that a replay file and the
   * minimizer mount as the hunt did.
   */
  metacopy?: boolean
}

/**
 * Both were off until bceff37 fixed test/regress/lower-hardlink-copy-up-ino.test.ts and
 * test/regress/setgid-over-whiteout.test.ts.
 */
export const DEFAULT_FEATURES: Required<Features> = {
  lowerHardLinks: true,
  setgid: true,
  metacopy: false,
}

export const ALL_FEATURES: Required<Features> = {
  lowerHardLinks: true,
  setgid: true,
  metacopy: false,
}

export const feature = (f: Features, k: keyof Features): boolean => f[k] ?? DEFAULT_FEATURES[k]
