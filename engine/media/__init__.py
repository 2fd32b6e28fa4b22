"""Video in and out: decoding, the codecs, preprocessing, and the standalone inflate runtime that export ships."""
