import EdgeAgent
