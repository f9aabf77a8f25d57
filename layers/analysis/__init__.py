"""Zone analysis for planners (built versus allowed per UTR) and plan-version comparison."""
