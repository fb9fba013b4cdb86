"""The database layer: connections and COPY (`engine`), binary COPY (`copy_binary`), schema
migrations (`migrations`) and the model registry (`registry`). Models never import it."""
