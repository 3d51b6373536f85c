--[[ Library > Plug-in Extras > "Enhance selected photos…".

Each selected photo is exported at full quality into a temp folder, sent through the
chosen bridge steps (or the chosen recipe file), saved next to its original as
"<name>-enhanced.<ext>" and added to the catalog stacked above the original. The progress
bar's cancel stops the photo in hand at its next step (or its recipe job) and starts no
other; a photo that fails is reported and the others go on. A recipe the bridge refuses
(it names the step) stops the run: it would refuse it for every photo.
]]

local LrApplication = import 'LrApplication'
local LrBinding = import 'LrBinding'
local LrDialogs = import 'LrDialogs'
local LrExportSession = import 'LrExportSession'
local LrFileUtils = import 'LrFileUtils'
local LrPathUtils = import 'LrPathUtils'
local LrPrefs = import 'LrPrefs'
local LrProgressScope = import 'LrProgressScope'
local LrTasks = import 'LrTasks'
local LrView = import 'LrView'

local BridgeClient = require 'BridgeClient'
local EnhanceSettings = require 'EnhanceSettings'
local Enhancer = require 'Enhancer'
local SettingsView = require 'SettingsView'

local EnhanceSelected = {}

EnhanceSelected.STACK_FORMATS = {
	{ value = 'tiff16', title = 'TIFF 16-bit, Adobe RGB' },
	{ value = 'tiff16prophoto', title = 'TIFF 16-bit, ProPhoto RGB' },
	{ value = 'original', title = 'Same as the original (JPEG stays JPEG; raw and others become TIFF 16-bit)' },
}

local SUFFIX = '-enhanced'

-- Export settings for a full-quality render: full size, no sharpening, no watermark,
-- all metadata, written into our temp folder.
function EnhanceSelected.exportSettingsFor(photo, settings, folder)
	local stackFormat = settings.rb_stackFormat
	-- A transparent background needs a format with alpha: never JPEG then.
	local jpegAllowed = settings.rb_background ~= 'remove'
	local out = {
		LR_exportServiceProvider = 'com.adobe.ag.export.file',
		LR_export_destinationType = 'specificFolder',
		LR_export_destinationPathPrefix = folder,
		LR_export_useSubfolder = false,
		LR_collisionHandling = 'rename',
		LR_renamingTokensOn = false,
		LR_size_doConstrain = false,
		LR_outputSharpeningOn = false,
		LR_useWatermark = false,
		LR_minimizeEmbeddedMetadata = false,   -- Lightroom 3
		LR_embeddedMetadataOption = 'all',     -- Lightroom 4 and later
		LR_metadata_keywordOptions = 'lightroomHierarchical',
		LR_removeLocationMetadata = false,
		LR_includeVideoFiles = false,
		LR_reimportExportedPhoto = false,
		LR_export_postProcessing = 'doNothing',
	}
	if stackFormat == 'original' and jpegAllowed and photo:getRawMetadata('fileFormat') == 'JPG' then
		out.LR_format = 'JPEG'
		out.LR_jpeg_quality = 1
		out.LR_export_colorSpace = 'sRGB'
	else
		out.LR_format = 'TIFF'
		out.LR_export_bitDepth = 16
		out.LR_tiff_compressionMethod = 'compressionMethod_ZIP'
		out.LR_export_colorSpace = stackFormat == 'tiff16prophoto' and 'ProPhotoRGB' or 'AdobeRGB'
	end
	return out
end

-- "<folder of the original>/<name>-enhanced.<ext>", never an existing file.
function EnhanceSelected.outputPathFor(photo, extension)
	local original = photo:getRawMetadata('path')
	local stem = LrPathUtils.leafName(LrPathUtils.removeExtension(original))
	local path = LrPathUtils.child(LrPathUtils.parent(original), stem .. SUFFIX .. '.' .. extension)
	return LrFileUtils.chooseUniqueFileName(path)
end

-- Protected calls use LrTasks.pcall: metadata reads and catalog writes yield in Lightroom,
-- and Lua 5.1 cannot yield across a plain pcall ("attempt to yield across metamethod/C-call
-- boundary"), so a plain pcall would turn each of them into a failure.
local protect = LrTasks.pcall

local function photoName(photo)
	local ok, name = protect(photo.getFormattedMetadata, photo, 'fileName')
	return ok and name or tostring(photo:getRawMetadata('path'))
end

-- Asks which steps to run (remembered in the plug-in's prefs). Returns settings or nil.
function EnhanceSelected.askSettings(context, count)
	local prefs = LrPrefs.prefsForPlugin()
	local props = LrBinding.makePropertyTable(context)
	EnhanceSettings.copy(EnhanceSettings.read(prefs), props)
	props.rb_stackFormat = prefs.rb_stackFormat or 'tiff16'
	SettingsView.observe(props)
	local f = LrView.osFactory()
	local contents = f:column {
		bind_to_object = props,
		spacing = f:control_spacing(),
		SettingsView.controls(f, props),
		f:row {
			f:static_text { title = LOC "$$$/RetouchBridge/StackFormat=Save as:" },
			f:popup_menu { value = LrView.bind 'rb_stackFormat', items = EnhanceSelected.STACK_FORMATS },
		},
		f:static_text { title = LrView.bind 'rb_synopsis', fill_horizontal = 1 },
	}
	local answer = LrDialogs.presentModalDialog {
		title = LOC("$$$/RetouchBridge/DialogTitle=Enhance ^1 selected photos", count),
		contents = contents,
		actionVerb = LOC "$$$/RetouchBridge/Enhance=Enhance",
	}
	if answer ~= 'ok' then return nil end
	EnhanceSettings.copy(props, prefs)
	prefs.rb_stackFormat = props.rb_stackFormat
	local settings = EnhanceSettings.read(props)
	settings.rb_stackFormat = props.rb_stackFormat
	return settings
end

-- IPTC text fields copied from the original to the enhanced photo, as Lightroom's own
-- "Edit in" does: the bridge keeps EXIF and ICC but not every XMP field.
EnhanceSelected.COPIED_TEXT_FIELDS = {
	'title', 'caption', 'headline', 'copyright', 'creator', 'creatorJobTitle', 'creatorAddress',
	'creatorCity', 'creatorStateProvince', 'creatorPostalCode', 'creatorCountry', 'creatorPhone',
	'creatorEmail', 'creatorUrl', 'descriptionWriter', 'jobIdentifier', 'instructions', 'provider',
	'source', 'rightsUsageTerms', 'copyrightInfoUrl', 'location', 'city', 'stateProvince', 'country',
	'isoCountryCode', 'intellectualGenre', 'scene',
}
EnhanceSelected.COPIED_RAW_FIELDS = { 'rating', 'colorNameForLabel', 'copyrightState', 'gps', 'gpsAltitude' }

-- Must run inside catalog:withWriteAccessDo. Each field on its own: one that this
-- Lightroom version does not know must not stop the others.
function EnhanceSelected.copyMetadata(from, to)
	local copied = 0
	local function copy(read, key)
		local ok, value = protect(read, from, key)
		if ok and value ~= nil and value ~= '' then
			if protect(to.setRawMetadata, to, key, value) then copied = copied + 1 end
		end
	end
	for _, key in ipairs(EnhanceSelected.COPIED_TEXT_FIELDS) do copy(from.getFormattedMetadata, key) end
	for _, key in ipairs(EnhanceSelected.COPIED_RAW_FIELDS) do copy(from.getRawMetadata, key) end
	local ok, keywords = protect(from.getRawMetadata, from, 'keywords')
	if ok and type(keywords) == 'table' then
		for _, keyword in ipairs(keywords) do
			if protect(to.addKeyword, to, keyword) then copied = copied + 1 end
		end
	end
	return copied
end

-- Export, enhance, stack one photo. Returns the new photo, or nil and a message.
function EnhanceSelected.processPhoto(args)
	local photo, catalog = args.photo, args.catalog
	if photo:getRawMetadata('fileFormat') == 'VIDEO' then
		return nil, 'Videos cannot be enhanced.'
	end
	local exportSettings = EnhanceSelected.exportSettingsFor(photo, args.settings, args.folder)
	local session = LrExportSession { photosToExport = { photo }, exportSettings = exportSettings }
	local rendered, renderMessage
	for _, rendition in session:renditions {} do
		local success, pathOrMessage = rendition:waitForRender()
		if success then rendered = pathOrMessage else renderMessage = pathOrMessage end
	end
	if not rendered then
		return nil, 'Lightroom could not export the photo: ' .. tostring(renderMessage or 'no file')
	end

	local output = EnhanceSettings.outputFor(exportSettings.LR_format, 1)
	local target = EnhanceSelected.outputPathFor(photo, output.extension)
	local ok, message, problem = Enhancer.enhanceFile {
		client = args.client, plan = args.plan, output_format = output,
		input = rendered, output = target,
		onStep = args.onStep, isCanceled = args.isCanceled,
	}
	LrFileUtils.delete(rendered)
	if not ok then return nil, message, problem end

	local added
	local status, err = protect(catalog.withWriteAccessDo, catalog,
		LOC "$$$/RetouchBridge/AddUndo=Add enhanced photo",
		function()
			added = catalog:addPhoto(target, photo, 'above')
			EnhanceSelected.copyMetadata(photo, added)
		end,
		{ timeout = 60 })
	if not status or not added then
		-- The file is kept: the work is done, only the catalog step failed.
		return nil, string.format('Enhanced and saved as %s, but it could not be added to the catalog (%s). '
			.. 'Import it with File > Import.', target, tostring(err or 'no photo returned'))
	end
	return added, target
end

function EnhanceSelected.run(context, options)
	options = options or {}
	local catalog = LrApplication.activeCatalog()
	local photos = catalog:getTargetPhotos()
	local result = { enhanced = {}, failed = {}, notStarted = 0, cancelled = false }
	if not photos or #photos == 0 then
		LrDialogs.message(LOC "$$$/RetouchBridge/NoSelection=Select the photos to enhance first.")
		return result
	end

	local settings = options.settings or EnhanceSelected.askSettings(context, #photos)
	if not settings then return result end
	local plan = EnhanceSettings.plan(settings)
	if #plan == 0 then
		if settings.rb_useRecipe then
			LrDialogs.message(LOC "$$$/RetouchBridge/NoRecipe=Choose the recipe file to run.")
		else
			LrDialogs.message(LOC "$$$/RetouchBridge/NoSteps=Choose at least one AI step to run.")
		end
		return result
	end
	-- Before any photo: the recipe file must load and the bridge must answer.
	local client = BridgeClient.fromPrefs()
	local loaded, notStarted = Enhancer.loadRecipes(plan)
	if loaded then
		local probe = BridgeClient.new { url = client.url, token = client.token, timeout = 15 }
		local reachable, problem = probe:checkAccess()
		if not reachable then notStarted = probe:describe(problem) end
	end
	if notStarted then
		LrDialogs.message(LOC "$$$/RetouchBridge/NotStarted=Nothing was changed.", notStarted, 'critical')
		result.failed[1] = { message = notStarted }
		result.notStarted = #photos
		return result
	end

	local folder = LrPathUtils.child(LrPathUtils.getStandardFilePath('temp'),
		string.format('RetouchBridge-stack-%d-%06d', os.time(), math.random(0, 999999)))
	LrFileUtils.createAllDirectories(folder)
	context:addCleanupHandler(function() LrFileUtils.delete(folder) end)

	local scope = LrProgressScope {
		title = LOC("$$$/RetouchBridge/Progress=Enhancing ^1 photos with Retouch Bridge", #photos),
		functionContext = context,
	}
	scope:setCancelable(true)

	for i, photo in ipairs(photos) do
		if scope:isCanceled() then
			result.cancelled = true
			result.notStarted = #photos - i + 1
			break
		end
		local name = photoName(photo)
		scope:setPortionComplete(i - 1, #photos)
		scope:setCaption(LOC("$$$/RetouchBridge/Caption=^1 (^2 of ^3)", name, i, #photos))
		local added, info, refusal = EnhanceSelected.processPhoto {
			photo = photo, catalog = catalog, settings = settings, plan = plan,
			client = client, folder = folder,
			onStep = function(step, steps, what)
				scope:setCaption(LOC("$$$/RetouchBridge/StepCaption=^1 (^2 of ^3): ^4, step ^5 of ^6",
					name, i, #photos, what.label or what.op, step, steps))
			end,
			isCanceled = function() return scope:isCanceled() end,
		}
		if added then
			result.enhanced[#result.enhanced + 1] = { photo = photo, added = added, path = info }
		elseif refusal and refusal.kind == 'cancelled' then
			result.cancelled, result.stopped = true, name
			result.notStarted = #photos - i
			break
		else
			result.failed[#result.failed + 1] = { photo = photo, name = name, message = info }
			-- Only a recipe the bridge refused before starting fails every photo alike.
			if refusal and refusal.refused then
				result.refused = true
				result.notStarted = #photos - i
				break
			end
		end
		scope:setPortionComplete(i, #photos)
	end
	scope:done()
	EnhanceSelected.report(result, #photos)
	return result
end

function EnhanceSelected.report(result, total)
	local lines = {}
	lines[#lines + 1] = string.format('%d of %d photos enhanced and stacked above their originals.',
		#result.enhanced, total)
	if result.cancelled then
		if result.stopped then
			lines[#lines + 1] = string.format('Cancelled: %s was stopped and left as it was.', tostring(result.stopped))
		end
		lines[#lines + 1] = string.format('Cancelled: %d photos were not started.', result.notStarted)
	end
	if result.refused and result.notStarted > 0 then
		lines[#lines + 1] = string.format('The bridge refused the recipe, so the other %d photos were not started.',
			result.notStarted)
	end
	for _, failure in ipairs(result.failed) do
		lines[#lines + 1] = string.format('%s: %s', tostring(failure.name), failure.message)
	end
	local style = (#result.failed > 0) and 'warning' or 'info'
	LrDialogs.message(LOC "$$$/RetouchBridge/Done=Enhance selected photos", table.concat(lines, '\n'), style)
end

return EnhanceSelected
