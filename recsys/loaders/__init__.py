"""Loaders that write a source's rows with COPY: MovieLens and the simulators into
`interactions` and `items`, MIND into `mind_impressions` and `items`, catalogue files into `items`."""
