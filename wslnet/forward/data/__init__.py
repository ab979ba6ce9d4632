"""The data path: moving bytes and datagrams between clients and targets."""
