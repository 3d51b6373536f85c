return {
	LrSdkVersion = 10.0,
	LrSdkMinimumVersion = 6.0,
	LrToolkitIdentifier = 'com.retouchbridge.lightroom',
	LrPluginName = LOC "$$$/RetouchBridge/PluginName=Retouch Bridge",
	LrPluginInfoUrl = 'http://127.0.0.1:7847/dashboard',

	LrPluginInfoProvider = 'PluginInfoProvider.lua',

	LrExportFilterProvider = {
		title = LOC "$$$/RetouchBridge/FilterName=AI Enhance",
		file = 'AIEnhanceFilterProvider.lua',
		id = 'aiEnhance',
	},

	LrLibraryMenuItems = {
		{
			title = LOC "$$$/RetouchBridge/EnhanceSelected=Enhance selected photos…",
			file = 'EnhanceSelectedMenuItem.lua',
			enabledWhen = 'photosSelected',
		},
	},

	VERSION = { major = 0, minor = 1, revision = 0, build = 1 },
}
