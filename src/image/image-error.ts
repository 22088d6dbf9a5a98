// ImageError: a refusal of the image tools (a malformed or hostile tarball, a bad argument).
// Its message is the one line the CLI prints; it never carries a stack to the user.

export class ImageError extends Error {
  override readonly name = 'ImageError'
}

export const imageError = (message: string): ImageError => new ImageError(message)
