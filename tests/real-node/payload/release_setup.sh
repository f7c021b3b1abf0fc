# The release's environment, as an analysis release's setup script gives it.
export AnalysisBase_VERSION=21.2.171
