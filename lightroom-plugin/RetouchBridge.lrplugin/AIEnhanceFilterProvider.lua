--[[ Export post-process action "AI Enhance" (LrExportFilterProvider).

For each rendition: let Lightroom render it (for JPEG exports, as a 16-bit TIFF in a
temp folder when "Render as 16-bit TIFF" is on), send it through the chosen bridge steps, write the
result over the rendition's destination in the export's own format, then report
with renditionIsDone. A failure marks only that photo failed, with what to do.
]]

local LrPathUtils = import 'LrPathUtils'
local LrView = import 'LrView'
local LrFileUtils = import 'LrFileUtils'

local BridgeClient = require 'BridgeClient'
local EnhanceSettings = require 'EnhanceSettings'
local Enhancer = require 'Enhancer'
local SettingsView = require 'SettingsView'

local Provider = {}

Provider.exportPresetFields = EnhanceSettings.FIELDS

function Provider.sectionForFilterInDialog(f, propertyTable)
	SettingsView.observe(propertyTable, 'LR_format')
	return {
		title = LOC "$$$/RetouchBridge/FilterTitle=AI Enhance (Retouch Bridge)",
		synopsis = LrView.bind { key = 'rb_synopsis', object = propertyTable },
		SettingsView.controls(f, propertyTable),
	}
end

local function newTempFolder()
	local base = LrPathUtils.getStandardFilePath('temp')
	local dir
	repeat
		dir = LrPathUtils.child(base, string.format('RetouchBridge-%d-%06d', os.time(), math.random(0, 999999)))
	until not LrFileUtils.exists(dir)
	LrFileUtils.createAllDirectories(dir)
	return dir
end

-- Whether Lightroom should render a 16-bit TIFF for the AI steps instead of the export's
-- own format. Only JPEG exports need it: the bridge answers at the depth it is given, so
-- for TIFF and PNG the render already has the depth the user chose for the file.
function Provider.wantsForcedRender(settings, lrFormat)
	return settings.rb_force16 == true and lrFormat == 'JPEG'
end

function Provider.postProcessRenderedPhotos(functionContext, filterContext)
	local props = filterContext.propertyTable
	local settings = EnhanceSettings.read(props)
	local plan = EnhanceSettings.plan(settings)
	local lrFormat = props.LR_format
	local valid, invalidMessage = EnhanceSettings.validate(settings, lrFormat)
	local output = EnhanceSettings.outputFor(lrFormat, props.LR_jpeg_quality)
	local client = BridgeClient.fromPrefs()

	-- One quick check first: with the bridge down or the token wrong, every photo would
	-- fail the same way, so say it once per photo without rendering or waiting on each.
	local blocked
	if valid and #plan > 0 then
		-- A recipe file that cannot be read fails every photo alike: say so without rendering.
		local loaded, loadProblem = Enhancer.loadRecipes(plan)
		if not loaded then blocked = loadProblem end
	end
	if valid and #plan > 0 and not blocked then
		local probe = BridgeClient.new { url = client.url, token = client.token, timeout = 15 }
		local reachable, problem = probe:checkAccess()
		if not reachable then blocked = probe:describe(problem) end
	end

	local force = valid and not blocked and #plan > 0
		and Provider.wantsForcedRender(settings, lrFormat)
	local tempDir
	if force then
		tempDir = newTempFolder()
		functionContext:addCleanupHandler(function() LrFileUtils.delete(tempDir) end)
	end

	local renditionOptions = {
		stopIfCanceled = true,
		filterSettings = function(renditionToSatisfy, exportSettings)
			if not force then return nil end
			-- Lightroom renders this photo for us as 16-bit TIFF in our temp folder; the
			-- colour space and size stay as the user set them.
			exportSettings.LR_format = 'TIFF'
			exportSettings.LR_export_bitDepth = 16
			exportSettings.LR_tiff_compressionMethod = 'compressionMethod_None'
			local leaf = LrPathUtils.leafName(LrPathUtils.removeExtension(renditionToSatisfy.destinationPath))
			return LrFileUtils.chooseUniqueFileName(LrPathUtils.child(tempDir, leaf .. '.tif'))
		end,
	}

	for sourceRendition, renditionToSatisfy in filterContext:renditions(renditionOptions) do
		if blocked then
			sourceRendition:skipRender()
			renditionToSatisfy:renditionIsDone(false, blocked)
		else
			local success, pathOrMessage = sourceRendition:waitForRender()
			if not success then
				renditionToSatisfy:renditionIsDone(false, pathOrMessage or 'Lightroom could not render this photo.')
			elseif not valid then
				renditionToSatisfy:renditionIsDone(false, invalidMessage)
			elseif #plan == 0 then
				renditionToSatisfy:renditionIsDone(true)
			else
				local ok, message, problem = Enhancer.enhanceFile {
					client = client, plan = plan, output_format = output,
					input = pathOrMessage, output = renditionToSatisfy.destinationPath,
				}
				if force then LrFileUtils.delete(pathOrMessage) end
				if ok then
					renditionToSatisfy:renditionIsDone(true)
				else
					renditionToSatisfy:renditionIsDone(false, message)
					-- The bridge refused a recipe step before any work: it refuses it for every
					-- photo, so the others are not rendered or sent. A step that failed while
					-- running concerns this photo only.
					if problem and problem.refused then blocked = message end
				end
			end
		end
	end
end

return Provider
