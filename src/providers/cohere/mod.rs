//! The Cohere v2 chat protocol (`POST /v2/chat`), an upstream only: every request is
//! translated through [`super::canonical`].
