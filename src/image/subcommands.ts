// The first words of the image commands (cli-image.ts registers them): the CLI must not take
// them for mount.fuse's SOURCE. A module of its own so that the mount path loads nothing else
// of the image tools (scripts/bundle.mjs leaves them out of the daemon's bundle).
export const IMAGE_SUBCOMMANDS = ['image', 'ps', 'rm']
